"""Runs inside real Krita (kritarunner): builds a document from a portrait, selects a
region, sends the active layer through the installed plug-in's code to the real backend,
adds the results, and writes what it finds for the test to check.

    kritarunner -s driver -f main SPEC.json
SPEC: {"pixels": raw RGBA file, "width", "height", "depth": U8|U16|F32,
       "profile": a colour profile Krita has, by name (optional; Krita's default),
       "selection": [x, y, w, h] or null, "op", "params", "out": folder,
       "hints": {parameter: [x, y, w, h] painted white on a layer of its own} (optional)}
"""

import json
from pathlib import Path

from krita import Krita, Selection


def main(args):
    spec = json.loads(Path(args[0]).read_text())
    out = Path(spec["out"])
    try:
        findings = run(spec, out)
    except Exception as exc:  # noqa: BLE001 - the test reads the failure from the file
        import traceback
        findings = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
    (out / "findings.json").write_text(json.dumps(findings, indent=1))


def run(spec, out):
    import limner_krita  # noqa: F401  (the installed plug-in: vendor path, docker factory)
    from limner import launcher
    from limner.client import Client
    from limner_krita import kritaio

    app = Krita.instance()
    w, h = spec["width"], spec["height"]
    doc = app.createDocument(w, h, "portrait", "RGBA", spec["depth"], spec.get("profile") or "",
                             72.0)
    source = doc.createNode("Portrait", "paintlayer")
    doc.rootNode().addChildNode(source, None)
    typecode = kritaio.DEPTHS[spec["depth"]][1]
    rgba = Path(spec["pixels"]).read_bytes()
    stored = kritaio.swap_red_blue(rgba, typecode) if kritaio.DEPTHS[spec["depth"]][2] else rgba
    source.setPixelData(stored, 0, 0, w, h)
    doc.setActiveNode(source)
    if spec["selection"]:
        selection = Selection()
        selection.select(*spec["selection"], 255)
        doc.setSelection(selection)
    before = bytes(source.pixelData(0, 0, w, h))

    read = kritaio.read_layer(doc, source)
    inputs = {}
    for name, (x, y, bw, bh) in (spec.get("hints") or {}).items():
        # a hint as a retoucher paints it: white strokes on a new layer (its bounds are
        # the strokes'), read over the source layer as the docker reads it
        hint = doc.createNode(name, "paintlayer")
        doc.rootNode().addChildNode(hint, None)
        hint.setPixelData(b"\xff" * (bw * bh * 4), x, y, bw, bh)
        inputs[name] = kritaio.read_over(hint, (*read.offset, w, h))
    doc.setActiveNode(source)
    with Client.from_info(launcher.ensure_running("krita"),
                          name=f"krita {app.version()} test") as client:
        layers = client.run(spec["op"], spec["params"], read.pixels, mask=read.mask,
                            offset=read.offset, transfer=read.transfer, inputs=inputs)
    group = kritaio.apply_results(doc, source, f"Limner: {spec['op']}", layers)
    doc.waitForDone()

    found = {"version": app.version(), "transfer": read.transfer,
             "profile": doc.colorProfile(),
             "sent_mask": read.mask is not None,
             "source_unchanged": bytes(source.pixelData(0, 0, w, h)) == before,
             "top_level": [n.name() for n in doc.rootNode().childNodes()],
             "group": group.name(), "group_type": group.type(), "layers": []}
    for i, node in enumerate(reversed(group.childNodes())):   # top first
        b = node.bounds()
        data = bytes(node.pixelData(0, 0, w, h))     # the whole canvas, for the test
        if kritaio.DEPTHS[spec["depth"]][2]:
            data = kritaio.swap_red_blue(data, typecode)
        path = out / f"layer{i}.raw"
        path.write_bytes(data)
        masks = [c for c in node.childNodes() if c.type() == "transparencymask"]
        if masks:   # 8-bit mask pixels
            (out / f"mask{i}.raw").write_bytes(bytes(masks[0].pixelData(0, 0, w, h)))
        found["layers"].append({"name": node.name(), "type": node.type(),
                                "visible": node.visible(), "blend": node.blendingMode(),
                                "profile": node.colorProfile(),
                                "bounds": [b.x(), b.y(), b.width(), b.height()],
                                "pixels": str(path),
                                "mask": str(out / f"mask{i}.raw") if masks else None,
                                "children": [c.type() for c in node.childNodes()]})
    doc.close()
    return found
