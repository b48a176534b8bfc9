import numpy as np
import pytest


def make_dicom(path, arr, *, photometric="MONOCHROME2", bits=12, spacing=(0.2, 0.2), window=None, phi=True, frames=1, rgb=False,
               voi_lut=None):
    """A realistic source DICOM written from scratch (with fake PHI in the header, to check nothing leaks)."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # DX for presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "DX"
    if phi:
        ds.PatientName = "Doe^Janet^Q"
        ds.PatientID = "MRN-55501234"
        ds.PatientBirthDate = "19470311"
        ds.InstitutionName = "Saint Example Hospital"
        ds.AccessionNumber = "ACC99887766"
        ds.StudyDate = "20230105"
        ds.ReferringPhysicianName = "House^Gregory"
    a = np.asarray(arr)
    if rgb:
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        px = a.astype(np.uint8)
    else:
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = 16 if bits > 8 else 8
        ds.BitsStored, ds.HighBit = bits, bits - 1
        px = a.astype(np.uint16 if bits > 8 else np.uint8)
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.Rows, ds.Columns = px.shape[1], px.shape[2]
    else:
        ds.Rows, ds.Columns = px.shape[0], px.shape[1]
    if spacing:
        ds.ImagerPixelSpacing = [str(spacing[0]), str(spacing[1])]
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if voi_lut is not None:
        item = Dataset()
        item.LUTDescriptor = [len(voi_lut), 0, 16]
        item.add_new(0x00283006, "OW", np.asarray(voi_lut, dtype=np.uint16).tobytes())
        ds.VOILUTSequence = [item]
    ds.PixelData = px.tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


@pytest.fixture
def phantom_img():
    from medsynth.imaging.phantom import PhantomGenerator

    return PhantomGenerator(size=48, seed=3).case(0).images["standard"]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The test machine is shared: one torch thread is several times faster than two on a loaded 2-core box."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
