"""Provenance in the standards' own form, so other tools can read that a picture was made
with AI: IPTC's digital source type and the AI system in XMP (pyexiv2, Exiv2's library;
exiftool, cameras' software, stock sites and social networks read it), and, when the user
has a certificate, C2PA Content Credentials (c2pa-python) with one action per operation
and the source picture as the parent ingredient.

Standard library at import (the GIMP plug-in vendors it to put the same XMP on an image);
pyexiv2 and c2pa are imported where they are used.
"""

from __future__ import annotations

import datetime
import json
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from . import __version__

SOURCE_TYPES = "http://cv.iptc.org/newscodes/digitalsourcetype/"
#: an edit of a photograph made with a trained model (a generated background included)
EDITED = SOURCE_TYPES + "compositeWithTrainedAlgorithmicMedia"
#: a picture a model made from nothing but a prompt
GENERATED = SOURCE_TYPES + "trainedAlgorithmicMedia"


def summary(provenances: list[dict]) -> tuple[list[str], list[str]]:
    """The operations and the engines (with their models) the layers' provenance names,
    in order, without repeats."""
    operations, engines = [], []
    for record in provenances:
        if not record.get("ai_edited"):
            continue
        operation = record.get("operation")
        if operation and operation not in operations:
            operations.append(operation)
        for engine in [record.get("engine"), *record.get("models", [])]:
            if engine and engine not in engines:
                engines.append(engine)
    return operations, engines


def xmp_fields(provenances: list[dict]) -> dict:
    """The XMP a file made from these layers carries (empty when none is AI-made)."""
    operations, engines = summary(provenances)
    if not operations:
        return {}
    system = "Limner" + (f" ({', '.join(engines)})" if engines else "")
    return {"Xmp.iptcExt.DigitalSourceType": EDITED,
            "Xmp.iptcExt.AISystemUsed": system,
            "Xmp.iptcExt.AISystemVersionUsed": __version__,
            "Xmp.xmp.CreatorTool": f"Limner {__version__}",
            "Xmp.dc.description": {'lang="x-default"': "Edited with AI by Limner: "
                                   + ", ".join(operations)}}


#: the XMP namespaces the fields use (Exiv2's prefixes)
NAMESPACES = {"iptcExt": "http://iptc.org/std/Iptc4xmpExt/2008-02-29/",
              "xmp": "http://ns.adobe.com/xap/1.0/", "dc": "http://purl.org/dc/elements/1.1/"}
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def xmp_packet(fields: dict) -> bytes:
    """The fields as an XMP packet (RDF/XML), for tools that take XMP whole (GIMP's
    Gimp.Metadata.set_from_xmp)."""
    for prefix, uri in (*NAMESPACES.items(), ("rdf", RDF), ("x", "adobe:ns:meta/")):
        ET.register_namespace(prefix, uri)
    meta = ET.Element("{adobe:ns:meta/}xmpmeta")
    rdf = ET.SubElement(meta, f"{{{RDF}}}RDF")
    description = ET.SubElement(rdf, f"{{{RDF}}}Description", {f"{{{RDF}}}about": ""})
    for key, value in fields.items():
        _, prefix, name = key.split(".", 2)
        element = ET.SubElement(description, f"{{{NAMESPACES[prefix]}}}{name}")
        if isinstance(value, dict):                  # a language alternative
            alternatives = ET.SubElement(element, f"{{{RDF}}}Alt")
            for language, text in value.items():
                item = ET.SubElement(alternatives, f"{{{RDF}}}li")
                item.set("{http://www.w3.org/XML/1998/namespace}lang",
                         language.split('"')[1])
                item.text = text
        else:
            element.text = value
    return ET.tostring(meta, encoding="utf-8")


def with_xmp(image: bytes, fields: dict) -> bytes:
    """The image file's bytes (PNG, JPEG, TIFF, WebP) with these XMP fields set."""
    if not fields:
        return image
    import pyexiv2

    data = pyexiv2.ImageData(image)
    try:
        data.modify_xmp(fields)
        return data.get_bytes()
    finally:
        data.close()


def manifest(title: str, provenances: list[dict]) -> dict:
    """A C2PA manifest definition: the source opened, then one c2pa.edited action per
    operation with its digital source type, engine, models and parameters."""
    actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["source"]}}]
    for record in provenances:
        if record.get("ai_edited"):
            actions.append({"action": "c2pa.edited", "digitalSourceType": EDITED,
                            "softwareAgent": {"name": "Limner", "version": __version__},
                            "parameters": {"operation": record.get("operation"),
                                           "engine": record.get("engine"),
                                           "models": record.get("models", []),
                                           "weights_licence": record.get("weights_licence"),
                                           "settings": json.dumps(record.get("params", {}))}})
    return {"claim_generator_info": [{"name": "Limner", "version": __version__}],
            "title": title,
            "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}]}


class SigningError(ValueError):
    """The certificate or key cannot sign (the message says why)."""


@dataclass(frozen=True)
class Signing:
    """What exports are signed with: a PEM certificate chain (the signing certificate
    first, ES256), its PEM key, and an RFC 3161 timestamp authority (without one a
    signature reads as invalid once the certificate has expired)."""

    cert: Path
    key: Path
    tsa_url: str | None = None


#: a run is refused if its certificate would expire within this (a batch re-checks it
#: before each picture)
MIN_VALIDITY = datetime.timedelta(hours=1)


def valid_until(signing: Signing) -> datetime.datetime:
    """When the signing certificate expires; SigningError if it is self-signed (C2PA
    refuses it as a signer) or not yet valid, or the chain cannot be read."""
    from cryptography import x509

    try:
        leaf = x509.load_pem_x509_certificates(Path(signing.cert).read_bytes())[0]
    except (OSError, ValueError, IndexError):
        raise SigningError(f"cannot read a PEM certificate chain from {signing.cert}") \
            from None
    if leaf.issuer == leaf.subject:
        raise SigningError(f"the signing certificate in {signing.cert} is self-signed: C2PA "
                           "needs one issued by a certificate authority (first in the chain)")
    now = datetime.datetime.now(datetime.timezone.utc)
    if leaf.not_valid_before_utc > now:
        raise SigningError(f"the signing certificate in {signing.cert} is valid only from "
                           f"{leaf.not_valid_before_utc:%Y-%m-%d %H:%M} UTC")
    return leaf.not_valid_after_utc


def check_valid(signing: Signing, lasting: datetime.timedelta = MIN_VALIDITY) -> None:
    """SigningError unless the certificate is valid now and for `lasting` more."""
    until = valid_until(signing)
    if until < datetime.datetime.now(datetime.timezone.utc) + lasting:
        raise SigningError(f"the signing certificate in {signing.cert} expires (or expired) "
                           f"{until:%Y-%m-%d %H:%M} UTC: renew it; nothing was signed with it")


def check_signer(signing: Signing) -> None:
    """Raise SigningError unless the certificate is a CA-issued one valid for the next
    hour and it and the key sign (tried on a tiny picture, with the timestamp authority
    if one is given), so a run fails before it writes anything rather than half signed."""
    import cv2
    import numpy as np

    check_valid(signing)
    tiny = cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes()
    with tempfile.TemporaryDirectory() as folder:
        trial = Path(folder) / "trial.png"
        trial.write_bytes(tiny)
        sign_png(trial, tiny, [{"ai_edited": True, "operation": "check"}], signing)


def sign_png(path: Path, source_png: bytes, provenances: list[dict], signing: Signing,
             title: str | None = None) -> None:
    """Sign a PNG Limner wrote, in place, with C2PA Content Credentials (`signing`); the
    source picture is the parent ingredient; `title`, the file's name (if `path` is a
    temporary one)."""
    import c2pa

    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(
            c2pa.C2paSigningAlg.ES256, Path(signing.cert).read_bytes(),
            Path(signing.key).read_bytes(), signing.tsa_url))
    except (OSError, c2pa.C2paError) as exc:
        raise SigningError(f"cannot sign with {signing.cert} and {signing.key}: {exc}") \
            from None
    builder = c2pa.Builder(manifest(title or path.name, provenances))
    with tempfile.TemporaryFile() as source, tempfile.TemporaryFile() as signed:
        source.write(source_png)
        source.seek(0)
        builder.add_ingredient({"title": "source", "relationship": "parentOf",
                                "label": "source"}, "image/png", source)
        with open(path, "rb") as unsigned:
            try:
                builder.sign(signer, "image/png", unsigned, signed)
            except c2pa.C2paError as exc:
                raise SigningError(f"C2PA signing failed: {exc}") from None
        signed.seek(0)
        path.write_bytes(signed.read())
