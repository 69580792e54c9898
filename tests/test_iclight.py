"""IC-Light: the loader checked on a hand-computed tiny case, and the engine end to end
through the real server on tiny random weights (offline)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_asks_to_install, cancel_at_first_step, run_array
from limner import protocol


def _tiny_unet():
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=8, norm_num_groups=32)


def test_widening_conv_in_keeps_the_old_weights_and_the_same_output():
    from limner.engines.iclight import widen_conv_in

    unet = _tiny_unet().eval()
    old_weight, old_bias = unet.conv_in.weight.clone(), unet.conv_in.bias.clone()
    sample, text = torch.randn(1, 4, 8, 8), torch.randn(1, 5, 32)
    with torch.no_grad():
        before = unet(sample, 10, text).sample
        widen_conv_in(unet)
        after = unet(torch.cat([sample, torch.randn(1, 4, 8, 8)], 1), 10, text).sample
    assert unet.conv_in.weight.shape == (32, 8, 3, 3) and unet.config.in_channels == 8
    assert torch.equal(unet.conv_in.weight[:, :4], old_weight)
    assert torch.equal(unet.conv_in.weight[:, 4:], torch.zeros(32, 4, 3, 3))
    assert torch.equal(unet.conv_in.bias, old_bias)
    assert torch.allclose(before, after, atol=1e-6), "new channels start with no effect"


def test_offsets_are_added_to_every_weight():
    from limner.engines.iclight import merge_offsets, widen_conv_in

    unet = _tiny_unet()
    widen_conv_in(unet)
    base = {k: v.clone() for k, v in unet.state_dict().items()}
    offsets = {k: torch.full_like(v, 0.25) for k, v in base.items()}
    merge_offsets(unet, offsets)
    merged = unet.state_dict()
    for key in base:
        assert torch.allclose(merged[key], base[key] + 0.25), key
    # the new input channels hold exactly the offset: 0 + 0.25
    assert torch.equal(merged["conv_in.weight"][:, 4:], torch.full((32, 4, 3, 3), 0.25))


def test_offsets_that_do_not_fit_are_refused_clearly():
    from limner.engines.iclight import merge_offsets

    unet = _tiny_unet()                                     # conv_in not widened
    offsets = {k: torch.zeros_like(v) for k, v in unet.state_dict().items()}
    offsets["conv_in.weight"] = torch.zeros(32, 8, 3, 3)   # offsets for a widened UNet
    with pytest.raises(ValueError, match="offset conv_in.weight has shape"):
        merge_offsets(unet, offsets)
    offsets.pop("conv_out.bias")
    with pytest.raises(ValueError, match="1 missing"):
        merge_offsets(unet, offsets)


def _relight(client, image, mask=None, on_progress=None, **params):
    params = {"engine": "ic-light", "steps": 3, "azimuth": -90.0, **params}
    return run_array(client, "relight", params, image, mask, on_progress=on_progress)


def test_ic_light_runs_end_to_end(tiny_models, client, small_portrait):
    stages = []
    layers = _relight(client, small_portrait, seed=3,
                      on_progress=lambda job, f, stage: stages.append(stage))
    (relit_layer, relit), (dodge_layer, dodge), (mult_layer, mult) = layers
    assert relit.shape == small_portrait.shape and relit.dtype == np.uint8
    assert dodge.shape == small_portrait.shape and mult.shape == small_portrait.shape
    assert (dodge_layer.blend, mult_layer.blend) == ("dodge", "multiply")
    assert [s for s in stages if s.startswith("step")] == ["step 1/2", "step 2/2"]
    assert relit_layer.provenance["engine"] == "ic-light"
    assert not np.array_equal(relit, small_portrait)


def test_ic_light_same_seed_same_result_and_selection_respected(tiny_models, client,
                                                                 small_portrait):
    mask = np.zeros(small_portrait.shape[:2], np.uint8)
    mask[20:100, 30:110] = 255
    a = _relight(client, small_portrait, mask, seed=4)[0][1]
    b = _relight(client, small_portrait, mask, seed=4)[0][1]
    c = _relight(client, small_portrait, mask, seed=5)[0][1]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a[mask == 0], small_portrait[mask == 0])


def test_ic_light_keep_colours_keeps_the_photos_colour(tiny_models, client, small_portrait):
    relit = _relight(client, small_portrait, keep_colors=True, temperature=2500.0)[0][1]
    lab_in = small_portrait.astype(float)
    # hue kept: red/blue balance of the face area within 10 %
    rows, cols = slice(20, 60), slice(50, 90)
    ratio_in = lab_in[rows, cols, 0].mean() / lab_in[rows, cols, 2].mean()
    ratio_out = relit[rows, cols, 0].astype(float).mean() / relit[rows, cols, 2].mean()
    assert abs(ratio_out - ratio_in) < 0.1 * ratio_in


def test_ic_light_cancel_stops_within_one_step(tiny_models, client, small_portrait):
    steps, error = cancel_at_first_step(client, lambda progress: _relight(
        client, small_portrait, steps=20, on_progress=progress))
    assert error.code == protocol.E_CANCELLED and len(steps) <= 2, steps


def test_missing_ic_light_weights_name_the_pull_command(without_models, client,
                                                        small_portrait):
    assert_asks_to_install(lambda: _relight(client, small_portrait),
                           "limner models pull sd15 ic-light-fc")


def _params(**given):
    from limner import operations
    from limner.engines.lights import Settings

    return Settings.of(operations.get("relight").validate({"engine": "ic-light", **given}))


@pytest.mark.parametrize("given, brighter", [
    ({"azimuth": -90, "elevation": 0}, "left"), ({"azimuth": 90, "elevation": 0}, "right"),
    ({"azimuth": 0, "elevation": 70}, "top"), ({"azimuth": 0, "elevation": -70}, "bottom"),
    ({"setup": "rembrandt", "azimuth": -45}, "left"),
    ({"setup": "rembrandt", "azimuth": 45}, "right"),
    ({"setup": "under-light"}, "bottom"),
])
def test_the_light_direction_sets_where_the_start_is_bright(given, brighter):
    from limner.engines.iclight import starting_picture

    start = starting_picture(64, 48, _params(**given)).mean(axis=2)
    sides = {"left": start[:, :16].mean(), "right": start[:, -16:].mean(),
             "top": start[:12].mean(), "bottom": start[-12:].mean()}
    opposite = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}[brighter]
    assert sides[brighter] > sides[opposite] + 0.2, sides


def test_a_frontal_light_starts_from_even_grey_in_the_lights_colour():
    from limner.engines.iclight import starting_picture

    start = starting_picture(64, 48, _params(azimuth=0, elevation=0))
    assert np.ptp(start.mean(axis=2)) < 1e-6
    warm = starting_picture(64, 48, _params(azimuth=0, elevation=0, temperature=2500))
    assert warm[..., 0].mean() > warm[..., 2].mean() + 0.1
