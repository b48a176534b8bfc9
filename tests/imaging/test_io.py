import logging

import numpy as np
import pytest
from PIL import Image

from medsynth.exceptions import DataFormatError
from medsynth.imaging.dicom import check_label_tags, read_dicom, write_synthetic_dicom
from medsynth.imaging.io import (
    load_png,
    load_stack,
    preprocess,
    read_image,
    read_labels_csv,
    save_png16,
    scan_folder,
)

from .conftest import make_dicom

PHI = ["Doe", "Janet", "MRN-55501234", "19470311", "Saint Example", "ACC99887766", "20230105", "House"]


def _rg1():
    from pydicom.data import get_testdata_file

    p = get_testdata_file("RG1_UNCR.dcm")  # pydicom-data: a real CR chest radiograph, MONOCHROME1, 15 bits, window 15000/30000
    if p is None:
        pytest.skip("pydicom-data is not installed")
    return p


def test_real_radiograph_monochrome1_window_and_resize():
    img, info = read_dicom(_rg1())
    assert info.photometric == "MONOCHROME1" and info.inverted and info.intensity == "window"
    assert info.shape == (1955, 1841) and info.bits == 15
    assert info.spacing_mm is None  # the file's PixelSpacing is 0\0: unknown, not zero
    # after inversion bone is bright and the air outside the patient dark (raw MONOCHROME1 values are the opposite)
    spine, lung, air = img[800:1000, 880:960].mean(), img[700:900, 500:700].mean(), img[:100, :100].mean()
    assert spine > lung > air
    small, sp = preprocess(img, 64, "pad")
    assert small.shape == (64, 64) and sp is None and 0 <= small.min() and small.max() <= 1


def test_voi_lut_sequence_is_applied():
    from pydicom.data import get_testdata_file

    img, info = read_dicom(get_testdata_file("vlut_04.dcm"))
    assert info.intensity == "voi_lut" and img.min() >= 0 and img.max() <= 1


def test_generated_dicoms_window_inversion_spacing(tmp_path, phantom_img):
    raw = (phantom_img * 4095).astype(np.uint16)
    p2 = make_dicom(tmp_path / "m2.dcm", raw, window=(2048, 4096))
    p1 = make_dicom(tmp_path / "m1.dcm", 4095 - raw, photometric="MONOCHROME1", window=(2048, 4096), spacing=(0.15, 0.15))
    a2, i2 = read_dicom(p2)
    a1, i1 = read_dicom(p1)
    assert i1.inverted and not i2.inverted
    np.testing.assert_allclose(a1, a2, atol=2e-3)  # the same picture once displayed
    np.testing.assert_allclose(a2, phantom_img, atol=2e-3)
    assert i1.spacing_mm == (0.15, 0.15)
    _, sp = preprocess(a1, 24, "pad", i1.spacing_mm)
    assert sp == pytest.approx((0.3, 0.3))
    # no window: percentile mapping; 8-bit file
    a8, i8 = read_dicom(make_dicom(tmp_path / "b8.dcm", (phantom_img * 255).astype(np.uint8), bits=8))
    assert i8.intensity == "percentile" and a8.max() == pytest.approx(1.0)
    # dtype normalisation keeps absolute values
    ad, idd = read_dicom(p2, normalize="dtype")
    np.testing.assert_allclose(ad, phantom_img, atol=1e-3)


def test_voi_lut_generated(tmp_path, phantom_img):
    raw = (phantom_img * 4095).astype(np.uint16)
    lut = np.clip(np.arange(4096) * 16, 0, 65535)
    img, info = read_dicom(make_dicom(tmp_path / "lut.dcm", raw, voi_lut=lut))
    assert info.intensity == "voi_lut"
    np.testing.assert_allclose(img, phantom_img, atol=2e-3)


def test_bad_dicoms_name_the_file_and_never_the_header(tmp_path, phantom_img, caplog):
    good = make_dicom(tmp_path / "good.dcm", (phantom_img * 4095).astype(np.uint16))
    data = good.read_bytes()
    trunc = tmp_path / "truncated.dcm"
    trunc.write_bytes(data[: len(data) // 2])
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a dicom at all" * 20)
    caplog.set_level(logging.DEBUG)
    for p in (trunc, junk):
        with pytest.raises(DataFormatError) as ei:
            read_image(p)
        msg = str(ei.value)
        assert p.name in msg and "Re-export" in msg and "remove" in msg  # names the file and both fixes
        assert not any(v in msg for v in PHI)
    assert not any(v in caplog.text for v in PHI)


def test_colour_and_multiframe(tmp_path, phantom_img):
    from pydicom.data import get_testdata_file

    with pytest.raises(DataFormatError, match="colour DICOM") as e:
        read_dicom(get_testdata_file("SC_rgb.dcm"))
    assert e.value.reason == "color_image"  # typed: the ingestion step never parses messages
    y, info = read_dicom(get_testdata_file("SC_rgb.dcm"), color="convert")
    assert y.ndim == 2 and info.color
    mf = make_dicom(tmp_path / "mf.dcm", np.stack([(phantom_img * 4095).astype(np.uint16)] * 3), frames=3)
    with pytest.raises(DataFormatError, match="multi-frame") as e:
        read_dicom(mf)
    assert e.value.reason == "multiframe"
    a, info = read_dicom(mf, frame="middle")
    assert a.shape == phantom_img.shape and info.frames == 3


def test_rasters_bit_depths_and_colour(tmp_path, phantom_img):
    p8 = tmp_path / "g8.png"
    Image.fromarray((phantom_img * 255).astype(np.uint8)).save(p8)
    p16 = save_png16(tmp_path / "g16.png", phantom_img)
    prgb = tmp_path / "grey_as_rgb.jpg"
    Image.fromarray(np.repeat((phantom_img * 255).astype(np.uint8)[..., None], 3, axis=2)).save(prgb, quality=95)
    pcol = tmp_path / "colour.png"
    col = np.zeros((20, 20, 3), np.uint8)
    col[..., 0] = 200
    Image.fromarray(col).save(pcol)
    a8, i8 = read_image(p8)
    a16, i16 = read_image(p16, normalize="dtype")
    ag, ig = read_image(prgb)
    assert i8.bits == 8 and i16.bits == 16 and i8.intensity == "dtype"
    np.testing.assert_allclose(a8, phantom_img, atol=1 / 255)
    np.testing.assert_allclose(a16, phantom_img, atol=1e-4)
    assert "grayscale stored as RGB" in ig.notes and not ig.color
    np.testing.assert_allclose(load_png(p16), phantom_img, atol=1e-4)
    with pytest.raises(DataFormatError, match="colour image") as e:
        read_image(pcol)
    assert e.value.reason == "color_image"
    y, info = read_image(pcol, color="convert")
    assert info.color and y.max() == pytest.approx(0.299 * 200 / 255, abs=1e-3)
    bad = tmp_path / "broken.png"
    bad.write_bytes(p8.read_bytes()[:40])
    with pytest.raises(DataFormatError, match="broken.png"):
        read_image(bad)


def test_preprocess_fits_and_load_stack_cache(tmp_path):
    img = np.zeros((40, 80), np.float32)
    img[:, :40] = 1.0
    pad, sp = preprocess(img, 20, "pad", (0.5, 0.5))
    crop, _ = preprocess(img, 20, "crop")
    st, sps = preprocess(img, 20, "stretch", (0.5, 0.5))
    assert pad.shape == crop.shape == st.shape == (20, 20)
    assert sp == (2.0, 2.0) and sps == (1.0, 2.0)
    assert pad[:5].max() == 0 and pad[8, :].mean() == pytest.approx(0.5, abs=0.05)  # letterboxed
    paths = [save_png16(tmp_path / f"{i}.png", np.full((16, 16), i / 4, np.float32)) for i in range(4)]
    cache = tmp_path / "cache"
    a = load_stack(paths, 16, cache)
    assert len(list(cache.glob("*.npy"))) == 1
    b = load_stack(paths, 16, cache)
    np.testing.assert_allclose(a, b, atol=1e-3)
    np.testing.assert_allclose(a[:, 0, 0], [0, 0.25, 0.5, 0.75], atol=1e-3)
    c = load_stack(paths, 8, cache)  # another size: another entry
    assert c.shape == (4, 8, 8) and len(list(cache.glob("*.npy"))) == 2


def test_synthetic_dicom_is_marked_and_copies_nothing(tmp_path, phantom_img):
    import pydicom

    src = pydicom.dcmread(_rg1(), stop_before_pixels=True)
    p = write_synthetic_dicom(tmp_path / "syn.dcm", phantom_img, description="unit test sample", labels=["Nodule"],
                              model_sha256="ab" * 32, pixel_spacing_mm=(0.7, 0.7))
    ds = pydicom.dcmread(p)
    assert list(ds.ImageType) == ["DERIVED", "SECONDARY"] and ds.ConversionType == "SYN"
    assert "SYNTHETIC" in ds.ImageComments and "Synthetic" in ds.DerivationDescription and "Nodule" in ds.ImageComments
    assert ds.BurnedInAnnotation == "NO" and ds.PatientIdentityRemoved == "YES" and str(ds.PatientName) == "SYNTHETIC^IMAGE"
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    p2 = write_synthetic_dicom(tmp_path / "syn2.dcm", phantom_img, description="x")
    ds2 = pydicom.dcmread(p2)
    for kw in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
        assert ds.get(kw) != ds2.get(kw) and str(ds.get(kw)).startswith("2.25.")
    # pixels survive (12 bits), and read back through the normal reader
    back, info = read_dicom(p)
    np.testing.assert_allclose(back, phantom_img, atol=1e-3)
    assert info.spacing_mm == (0.7, 0.7)
    # nothing from a real source header is in the file
    # Header bytes only, and without the freshly generated random UIDs (checked above to be new 2.25.* values):
    # a 39-digit random UID or the 12-bit pixel stream contains a 4-digit source value such as b"1996" by chance
    # (about 1 run in 100), which is not copying.
    blob = p.read_bytes().replace(ds.PixelData, b"")
    for el in ds.iterall():
        if el.VR == "UI" and str(el.value).startswith("2.25."):
            blob = blob.replace(str(el.value).encode(), b"")
    from pydicom.uid import UID

    checked = 0
    for el in src.iterall():
        if el.VR in ("PN", "LO", "SH", "DA", "TM", "DT", "UI", "AE", "LT", "ST", "UT", "IS", "DS") and el.value not in (None, ""):
            vals = el.value if el.VM > 1 else [el.value]
            for v in vals:
                v = str(v).strip()
                if len(v) < 4 or (el.VR == "UI" and UID(v).is_valid and UID(v).name != v):
                    continue  # standard dictionary UIDs (transfer syntaxes, SOP classes) are vocabulary, not source values
                checked += 1
                assert v.encode() not in blob, f"{el.keyword} value copied"
    assert checked > 20


def test_labels_csv_variants(tmp_path):
    (tmp_path / "a.csv").write_text("file,labels,report\nx.png,Nodule|Opacity,two findings\ny.png,No Finding,\nz.png,,\n")
    rows = read_labels_csv(tmp_path / "a.csv", report_column="report")
    assert [r.labels for r in rows] == [["Nodule", "Opacity"], [], []] and rows[0].text == "two findings" and rows[0].line == 2
    (tmp_path / "b.csv").write_text("path,Nodule,Cardiomegaly\nx.png,1,-1\ny.png,0,1.0\n")
    rows = read_labels_csv(tmp_path / "b.csv", label_columns=["Nodule", "Cardiomegaly"])
    assert [r.labels for r in rows] == [["Nodule"], ["Cardiomegaly"]]
    rows = read_labels_csv(tmp_path / "b.csv", label_columns=["Nodule", "Cardiomegaly"], uncertain_as="positive")
    assert rows[0].labels == ["Cardiomegaly", "Nodule"]
    (tmp_path / "c.csv").write_text("path,Nodule\nx.png,maybe\n")
    with pytest.raises(DataFormatError, match="lines 2"):
        read_labels_csv(tmp_path / "c.csv", label_columns=["Nodule"])
    with pytest.raises(DataFormatError, match=r"img, labels not in the CSV \(columns: path, Nodule\)"):
        read_labels_csv(tmp_path / "c.csv", file_column="img")
    (tmp_path / "e.csv").write_text("name,labels\nx.png,\n")
    with pytest.raises(DataFormatError, match="no file column. Columns are: name, labels"):
        read_labels_csv(tmp_path / "e.csv")
    (tmp_path / "d.csv").write_text("std,soft,labels\nx.png,xs.png,\n")
    rows = read_labels_csv(tmp_path / "d.csv", modality_columns={"standard": "std", "soft_tissue": "soft"})
    assert rows[0].files == {"standard": "x.png", "soft_tissue": "xs.png"}


def test_label_tags_refuse_identifying_elements():
    assert check_label_tags(["BodyPartExamined", "ViewPosition"]) == []
    probs = check_label_tags(["PatientName", "StudyDate", "0010,0020", "NotAKeyword"])
    assert len(probs) == 4 and any("identify" in p for p in probs) and any("not a DICOM keyword" in p for p in probs)


def test_scan_folder_finds_extensionless_dicom(tmp_path, phantom_img):
    make_dicom(tmp_path / "IM0001", (phantom_img * 4095).astype(np.uint16))
    save_png16(tmp_path / "sub" / "b.png", phantom_img)
    (tmp_path / ".hidden.png").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    found = [p.relative_to(tmp_path).as_posix() for p in scan_folder(tmp_path)]
    assert found == ["IM0001", "sub/b.png"]
    with pytest.raises(DataFormatError, match="not a folder"):
        scan_folder(tmp_path / "nope")
