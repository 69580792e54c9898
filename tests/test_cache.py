"""The layer cache: bounded, least recently used first out, owned by connections and gone
with the last of them; and through the server, a second relight of a layer reuses it."""

from __future__ import annotations

import numpy as np
from conftest import run_array
from limner import cache
from limner.cache import LayerCache, layer_key
from limner.client import Client


def block(megabytes: float) -> np.ndarray:
    return np.zeros(int(megabytes * 2**20), np.uint8)


def test_a_value_is_built_once_and_then_served():
    layers, builds = LayerCache(), []
    for _ in range(3):
        value = layers.get("k", "connection", lambda: builds.append(1) or block(1))
    assert len(builds) == 1 and value.nbytes == 2**20


def test_the_least_recently_used_goes_first_when_the_limit_is_reached():
    layers = LayerCache(limit_bytes=3 << 20)
    for key in "abc":
        layers.get(key, "connection", lambda: block(1))
    layers.get("a", "connection", lambda: block(1))            # a is used again
    layers.get("d", "connection", lambda: block(1))            # b, the oldest, goes
    assert set(layers.keys()) == {"a", "c", "d"} and layers.bytes_used <= 3 << 20
    layers.get("huge", "connection", lambda: block(4))          # never fits: not kept
    assert "huge" not in set(layers.keys())


def test_entries_go_with_the_last_connection_that_used_them():
    layers = LayerCache()
    layers.get("shared", "one", lambda: block(1))
    layers.get("shared", "two", lambda: block(1))
    layers.get("mine", "one", lambda: block(1))
    layers.release("one")
    assert set(layers.keys()) == {"shared"}
    layers.release("two")
    assert len(layers) == 0


def test_a_run_with_no_owner_keeps_nothing():
    layers = LayerCache()
    layers.get("k", None, lambda: block(1))
    assert len(layers) == 0


def test_the_key_follows_pixels_selection_and_settings():
    image = np.zeros((8, 8, 3), np.uint8)
    mask = np.full((8, 8), 255, np.uint8)
    key = layer_key(image, None, "rvm")
    assert key == layer_key(image.copy(), None, "rvm")
    changed = image.copy()
    changed[3, 3, 1] = 1
    assert len({key, layer_key(changed, None, "rvm"), layer_key(image, mask, "rvm"),
                layer_key(image, None, "mediapipe"),
                layer_key(image.astype(np.uint16), None, "rvm")}) == 5


def test_relighting_a_layer_again_reuses_its_geometry_until_the_connection_closes(
        server, small_portrait):
    cache.LAYERS.clear()
    with Client(server.uri, server.server.token) as client:
        run_array(client, "relight", {"azimuth": -60}, small_portrait)
        cached = len(cache.LAYERS)
        assert cached >= 1
        run_array(client, "relight", {"azimuth": 60}, small_portrait)
        assert len(cache.LAYERS) == cached                   # nothing new to work out
        run_array(client, "relight", {}, np.ascontiguousarray(small_portrait[:, ::-1]))
        assert len(cache.LAYERS) > cached                    # other pixels, other entry
    for _ in range(100):                                     # the server sees the close
        if len(cache.LAYERS) == 0:
            break
        import time
        time.sleep(0.05)
    assert len(cache.LAYERS) == 0
