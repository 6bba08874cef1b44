"""Reading a facsimile back as a reader would: its text (pdftotext, from poppler-utils), the QR code's modules
(pdfimages, then the pixels read one module at a time) and its PDF signature (pyHanko's validation, trusting the
development CA only)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

FINDER_MODULES = 7  # a finder pattern is 7 modules wide


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is missing: install poppler-utils (make tools)")
    return path


def text_of(pdf: bytes, tmp_path: Path) -> str:
    """Every page's text, in reading order, whitespace folded to single spaces."""
    source = tmp_path / "facsimile.pdf"
    source.write_bytes(pdf)
    result = subprocess.run([_tool("pdftotext"), "-enc", "UTF-8", str(source), "-"], capture_output=True, timeout=60, check=True)
    return " ".join(result.stdout.decode("utf-8").split())


def qr_modules(pdf: bytes, tmp_path: Path) -> list[list[bool]]:
    """The QR code printed on the first page, read back module by module (True: dark) from the image the PDF embeds:
    the quiet zone and one finder pattern give the module size, then each module's centre pixel is read."""
    source = tmp_path / "qr.pdf"
    source.write_bytes(pdf)
    subprocess.run([_tool("pdfimages"), "-png", "-f", "1", "-l", "1", str(source), str(tmp_path / "image")], timeout=60, check=True)
    images = sorted(tmp_path.glob("image-*.png"))
    assert len(images) == 1, f"expected the QR code as the one image of page 1, found {len(images)}"
    picture = Image.open(images[0]).convert("L")
    width, height = picture.size
    dark = lambda x, y: picture.getpixel((x, y)) < 128  # noqa: E731
    top_left = next((x, y) for y in range(height) for x in range(width) if dark(x, y))
    run = 0
    while dark(top_left[0] + run, top_left[1]):
        run += 1
    module = run / FINDER_MODULES
    count = round((width - 2 * top_left[0]) / module)
    return [[dark(int(top_left[0] + (col + 0.5) * module), int(top_left[1] + (row + 0.5) * module)) for col in range(count)] for row in range(count)]


def signature_status(pdf: bytes, ca_pem: Path):
    """pyHanko's verdict on the one signature of ``pdf``, trusting only the CA in ``ca_pem``."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    assert len(reader.embedded_signatures) == 1, "a facsimile carries one signature"
    context = ValidationContext(trust_roots=[load_cert_from_pemder(str(ca_pem))], allow_fetching=False)
    return validate_pdf_signature(reader.embedded_signatures[0], context)
