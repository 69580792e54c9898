"""The renderer's parts on geometry whose answer is known: spherical harmonics on a lit
sphere, a bump's cast shadow, the inflated silhouette, the rasterised mesh, one seamless
surface where a real face meets its head and body."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from limner.engines import shading
from limner.engines.face import orientation
from limner.engines.lights import light_direction
from limner.engines.surface import inflate, normals_of, rasterise_face, subject_height, thin_plate


def sphere(side: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(normals, inside) of a sphere filling a side x side picture."""
    yy, xx = (np.mgrid[0:side, 0:side] + 0.5) / side * 2 - 1
    inside = xx ** 2 + yy ** 2 < 0.98
    z = np.sqrt(np.clip(1 - xx ** 2 - yy ** 2, 0, 1))
    return np.dstack([xx, -yy, z]).astype(np.float32), inside


@pytest.mark.parametrize("azimuth, elevation", [(-60, 20), (30, 45), (0, 0), (80, -10),
                                                (-20, -40)])
def test_spherical_harmonics_find_the_light_on_a_sphere(azimuth, elevation):
    normals, inside = sphere()
    light = light_direction(azimuth, elevation)
    rng = np.random.default_rng(azimuth + 1000)
    albedo = np.array([0.8, 0.55, 0.45], np.float32)
    shade = 0.15 + np.clip(normals @ light, 0, None)
    colours = shade[..., None] * albedo * rng.normal(1, 0.05, normals.shape)  # skin texture
    blemish = rng.random(inside.shape) < 0.08                                # and moles
    colours[blemish] *= 0.2
    found = shading.dominant_direction(shading.fit_sh(normals[inside], colours[inside])[0],
                                       normals[inside])
    angle = np.degrees(np.arccos(np.clip(found @ light, -1, 1)))
    assert angle <= 10, (found, light, angle)


def test_skin_clipped_at_white_counts_as_at_least_that_bright():
    """A sphere lit hard from the side, its lit half clipped at white (a camera exposed
    for the shadow side), fitted as the key light's model is (ambient + key x Lambert):
    with the clipped samples as lower bounds the key comes out as strong as it was; taken
    as they are, far weaker, and the delit face would keep its lit side bright."""
    normals, inside = sphere()
    lambert = np.clip(normals @ light_direction(-60, 10), 0, None)[inside]
    true = 0.1 + 2.0 * lambert
    clipped = true >= 1.0
    assert 0.2 < clipped.mean() < 0.6
    basis = np.stack([np.ones_like(lambert), lambert], 1)
    keys = [float(shading.robust_fit(basis, np.minimum(true, 1.0)[:, None],
                                     at_least=censor)[0][1, 0]) for censor in (clipped, None)]
    assert abs(keys[0] - 2.0) < 0.2 and keys[1] < 1.5, keys


def test_first_order_fit_still_finds_the_side():
    normals, inside = sphere()
    light = light_direction(70, 10)
    colours = (0.2 + np.clip(normals @ light, 0, None))[..., None] * np.ones(3)
    found = shading.dominant_direction(shading.fit_sh(normals[inside], colours[inside],
                                                      order=1)[0], normals[inside])
    assert found[0] > 0.7


def test_a_bump_casts_a_shadow_away_from_the_light_that_lengthens_as_the_light_sinks():
    yy, xx = np.mgrid[0:120, 0:240].astype(np.float32)
    bump = 30 * np.exp(-((xx - 80) ** 2 + (yy - 60) ** 2) / (2 * 8 ** 2))
    lengths = []
    for elevation in (60, 40, 25, 15):
        # a light from the image's left, raised `elevation` above the picture plane
        direction = light_direction(-90 + elevation, 0)
        visible = shading.shadow(bump, direction, softness=0.0, reach=150)
        row = visible[60]
        assert row[:70].min() > 0.95                          # nothing on the lit side
        shadowed = np.flatnonzero(row[90:] < 0.5)
        lengths.append(len(shadowed))
    assert lengths[0] >= 1 and all(b > a for a, b in pairwise(lengths)), lengths


def test_a_soft_light_makes_a_wider_penumbra():
    yy, xx = np.mgrid[0:120, 0:240].astype(np.float32)
    bump = 30 * np.exp(-((xx - 80) ** 2 + (yy - 60) ** 2) / (2 * 8 ** 2))
    direction = light_direction(-60, 0)
    widths = [int(((row > 0.05) & (row < 0.95)).sum()) for row in
              (shading.shadow(bump, direction, s, 150)[60] for s in (0.0, 1.0))]
    assert widths[1] > 2 * max(widths[0], 1), widths


def test_a_light_from_behind_reaches_the_outline_and_not_the_side_of_the_nose():
    """A head as a ball with a nose on it, lit from 50 degrees behind on the right: the
    ball's right outline keeps the light, the nose's right side (facing the light, but
    with the ball between) does not."""
    yy, xx = np.mgrid[0:200, 0:200].astype(np.float32)
    head = np.clip(80 ** 2 - (xx - 100) ** 2 - (yy - 100) ** 2, 0, None) ** 0.5
    nose = 25 * np.exp(-((xx - 100) ** 2 / (2 * 6 ** 2) + (yy - 100) ** 2 / (2 * 20 ** 2)))
    height = (head + nose).astype(np.float32)
    inside = head > 0
    direction = light_direction(140, 20)
    visible = shading.back_light(height, inside, direction, softness=0.0, reach=150)
    lit = (normals_of(height) @ direction > 0.2) & inside
    outline = lit & (np.hypot(xx - 100, yy - 100) > 74)
    nose_side = lit & (np.abs(xx - 108) < 4) & (np.abs(yy - 100) < 10)
    assert outline.any() and nose_side.any()
    assert np.median(visible[outline]) > 0.9
    assert visible[nose_side].max() < 0.1


def test_an_inflated_disk_is_a_dome_and_runs_on_flat_off_the_frame():
    yy, xx = np.mgrid[0:200, 0:200]
    disk = (xx - 100) ** 2 + (yy - 100) ** 2 < 80 ** 2
    height = inflate(disk)
    centre, edge = height[100, 100], height[100, 25]
    assert centre > 25 and edge < 0.5 * centre
    assert np.all(np.diff(height[100, 25:100]) > 0)          # rises to the middle
    torso = (yy > 120) & (np.abs(xx - 100) < 70)              # cut by the picture's bottom
    height = inflate(torso)
    assert abs(height[-1, 100] - height[-6, 100]) < 0.02 * height[-1, 100]


def test_the_mesh_is_rasterised_triangle_by_triangle(portraits):
    from lightmeasure import faces

    points = faces(portraits["astronaut"])[0].copy()
    points[:, 2] = -(0.3 * points[:, 0] - 0.2 * points[:, 1] + 7)   # a tilted plane
    height, covered = rasterise_face(portraits["astronaut"].shape[:2], points)
    ys, xs = np.nonzero(covered)
    expected = 0.3 * xs - 0.2 * ys + 7
    assert covered.sum() > 5000
    assert np.abs(height[ys, xs] - expected).max() < 0.6   # the plane, where mouth is too


def test_a_thin_plate_keeps_what_is_known_and_continues_its_slope():
    known = np.zeros((30, 60), bool)
    known[:, :20] = True
    values = np.tile(np.arange(60, dtype=float), (30, 1)) * 0.5
    carried = thin_plate(known, values)
    assert np.allclose(carried[known], values[known])
    slope = np.diff(carried[15])
    assert np.allclose(slope[18:23], 0.5, atol=0.05)          # no kink where it ends
    assert np.all(np.diff(slope[20:]) <= 1e-9)                # then eases off, smoothly


def test_a_real_face_joins_its_head_and_body_without_a_seam(portraits):
    """One height field: neighbouring normals never turn sharply, anywhere inside."""
    from lightmeasure import faces, subject_matte

    image = portraits["grace_hopper"]
    alpha = subject_matte(image)
    height, widened = subject_height(alpha, faces(image))
    normals = normals_of(height)
    turn = np.degrees(np.arccos(np.clip((normals[1:, 1:] * normals[:-1, 1:]).sum(-1), -1, 1)))
    turn = np.maximum(turn, np.degrees(np.arccos(np.clip(
        (normals[1:, 1:] * normals[1:, :-1]).sum(-1), -1, 1))))
    import cv2
    inside = cv2.erode((widened > 0.5).astype(np.uint8), np.ones((9, 9), np.uint8))[1:, 1:]
    assert np.percentile(turn[inside > 0], 99.9) < 12
    assert height[alpha > 0.5].min() >= 0


def test_a_face_turned_by_thirty_degrees_reads_so(portraits):
    from lightmeasure import faces

    points = faces(portraits["astronaut"])[0]
    yaw = orientation(points)[0]
    centre = points.mean(0)
    turn = np.radians(30)      # the nose swings towards the image's right
    x, z = points[:, 0] - centre[0], points[:, 2] - centre[2]
    turned = points.copy()
    turned[:, 0] = centre[0] + x * np.cos(turn) - z * np.sin(turn)
    turned[:, 2] = centre[2] + x * np.sin(turn) + z * np.cos(turn)
    assert orientation(turned)[0] == pytest.approx(yaw + 30, abs=5)
