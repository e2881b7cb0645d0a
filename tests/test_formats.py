"""Data formats of the ``formats`` extra (vaekit/data/arrow_table.py, h5ad.py, hf_datasets.py, format_stream.py,
torch_dataset.py): Parquet/Feather tables, AnnData .h5ad, Hugging Face datasets saved to disk, torch Datasets in
the Python API; the same numbers as CSV/.npy, streamed or not, and one-line errors naming the file."""
from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import torch

from vaekit.app.api import train_run
from vaekit.data import load_data
from vaekit.data.h5ad import open_h5ad
from vaekit.errors import VaekitError

pa = pq = feather = anndata = sparse = None  # imported by _formats on the worker that runs this file (anndata: seconds)


@pytest.fixture(scope="module", autouse=True)
def _formats():
    global pa, pq, feather, anndata, sparse
    pa, pq, feather, anndata, sparse = (pytest.importorskip(m) for m in (
        "pyarrow", "pyarrow.parquet", "pyarrow.feather", "anndata", "scipy.sparse"))

N, D, GENES = 200, 4, 12
RNG = np.random.default_rng(0)
VALUES = RNG.normal(2, 3, (N, D))
NAMES = np.array(["b", "a", "c"])[np.arange(N) % 3]


def arrow_table(values=VALUES, labels=NAMES):
    return pa.table({**{f"f{j}": values[:, j] for j in range(values.shape[1])}, "kind": labels})


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """The same table as CSV, Parquet and Feather."""
    d = tmp_path_factory.mktemp("tables")
    t = arrow_table()
    pq.write_table(t, d / "t.parquet", row_group_size=64)
    feather.write_feather(t, d / "t.feather")
    lines = ["f0,f1,f2,f3,kind"] + [",".join([*(repr(float(v)) for v in row), k]) for row, k in zip(VALUES, NAMES)]
    (d / "t.csv").write_text("\n".join(lines) + "\n")
    return d


def counts_adata(fmt: str = "csr"):
    counts = np.random.default_rng(1).poisson(1.5, (N, GENES)).astype(np.float32)
    counts[:, 3] = 0  # an all-zero gene
    matrix = {"csr": sparse.csr_matrix, "csc": sparse.csc_matrix, "dense": np.asarray}[fmt]
    obs = {"cell_type": np.array(["T", "B", "NK", "T"])[np.arange(N) % 4], "batch": np.arange(N) % 2,
           "donor": np.array(["d2", "d1", "d10"])[np.arange(N) % 3]}  # a plain string column
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata = anndata.AnnData(X=matrix(np.log1p(counts)), obs=pd.DataFrame(obs, index=[f"c{i}" for i in range(N)]),
                                var=pd.DataFrame(index=[f"g{j}" for j in range(GENES)]))
        adata.obs["cell_type"] = adata.obs["cell_type"].astype("category")
        adata.layers["counts"] = matrix(counts)
    return adata, counts


@pytest.fixture(scope="module")
def h5ad(tmp_path_factory):
    """``{format: (path, counts)}``: the same cells with X and the counts layer CSR, CSC or dense."""
    d = tmp_path_factory.mktemp("h5ad")
    out = {}
    for fmt in ("csr", "csc", "dense"):
        adata, counts = counts_adata(fmt)
        adata.write_h5ad(d / f"{fmt}.h5ad")
        out[fmt] = (d / f"{fmt}.h5ad", counts)
    return out


def same_splits(a, b) -> None:
    for part in ("train", "val", "test"):
        x, y = getattr(a, part), getattr(b, part)
        assert torch.equal(x.x[:], y.x[:]), part
        assert (x.y is None and y.y is None) or torch.equal(x.y, y.y)


@pytest.mark.parametrize("name", ["t.parquet", "t.feather"])
def test_arrow_tables_load_like_the_same_csv(tables, name):
    csv = load_data(str(tables / "t.csv"), label_column="kind")
    got = load_data(str(tables / name), label_column="kind")
    same_splits(csv, got)
    assert got.info.kind == "table" and got.info.columns == ["f0", "f1", "f2", "f3"]
    assert got.info.class_names == ["a", "b", "c"] and got.info.mean == csv.info.mean
    streamed = load_data(str(tables / name), label_column="kind", stream=True)
    same_splits(got, streamed)
    assert streamed.info.mean == got.info.mean and streamed.info.columns == got.info.columns


def test_arrow_table_refusals_name_the_file_and_column(tmp_path):
    cases = {
        "cat.parquet": (arrow_table(), None, "column 'kind' is categorical"),
        "dict.parquet": (pa.table({"a": [1.0, 2.0], "c": pa.array(["x", "y"]).dictionary_encode()}), None,
                         "column 'c' is categorical"),
        "list.parquet": (pa.table({"a": [1.0, 2.0], "l": [[1], [2]]}), None, "column 'l' has type list"),
        "null.parquet": (pa.table({"a": [1.0, None, 3.0, 4.0, 5.0, 6.0]}), None, "NaN/missing"),
        "nolabel.parquet": (arrow_table(), "species", "has no column 'species'"),
        "nulllabel.parquet": (pa.table({"a": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "y": ["p", None, "q", "p", "q", "p"]}),
                              "y", "missing label"),
    }
    for name, (table, label, expected) in cases.items():
        pq.write_table(table, tmp_path / name)
        for stream in (False, True):
            with pytest.raises(VaekitError, match=expected) as e:
                load_data(str(tmp_path / name), label_column=label, stream=stream)
            assert name in str(e.value)
    (tmp_path / "junk.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(VaekitError, match="could not read Parquet '.*junk.parquet'"):
        load_data(str(tmp_path / "junk.parquet"))


def test_h5ad_layers_labels_and_counts_in_memory_and_streamed(h5ad):
    path, counts = h5ad["csr"]
    ref = load_data(str(path), layer="counts", label_column="cell_type", val_fraction=0.1)
    np.savez(path.with_suffix(".npz"), x=counts, y=np.array(["T", "B", "NK", "T"])[np.arange(N) % 4])
    as_npy = load_data(str(path.with_suffix(".npz")), val_fraction=0.1)
    assert ref.info.extra["counts"] is True and ref.info.extra["layer"] == "counts"
    assert ref.info.class_names == ["B", "NK", "T"] and ref.info.columns[:2] == ["g0", "g1"]
    assert ref.info.mean == as_npy.info.mean  # the same numbers as the dense array
    same_splits(ref, as_npy)
    for fmt in ("csc", "dense"):
        same_splits(ref, load_data(str(h5ad[fmt][0]), layer="counts", label_column="cell_type"))
    streamed = load_data(str(path), layer="counts", label_column="cell_type", stream=True)
    same_splits(ref, streamed)
    assert streamed.info.extra["counts"] is True and streamed.info.columns == ref.info.columns
    assert load_data(str(path)).info.extra["counts"] is False  # X holds log1p(counts)
    assert load_data(str(path), stream=True).info.extra["counts"] is False
    h = open_h5ad(path, "x.h5ad", layer="counts")  # the interface the count likelihoods read
    np.testing.assert_array_equal(h.rows(np.array([5, 0, 6])), counts[[5, 0, 6]])
    codes, names = h.obs_codes("batch")
    assert names == ["0", "1"] or names == [0, 1]
    np.testing.assert_array_equal(codes, np.arange(N) % 2)
    assert h.is_counts()


def test_h5ad_refusals_name_the_file(h5ad, tmp_path):
    path = h5ad["csr"][0]
    with pytest.raises(VaekitError, match=r"csr.h5ad' has no layer 'spliced'; its layers are: counts"):
        load_data(str(path), layer="spliced")
    with pytest.raises(VaekitError, match=r"csr.h5ad' has no obs column 'tissue'.*cell_type"):
        load_data(str(path), label_column="tissue", stream=True)
    with pytest.raises(VaekitError, match="CSC .*re-save it as CSR"):
        load_data(str(h5ad["csc"][0]), stream=True)
    with pytest.raises(VaekitError, match="--layer counts applies to AnnData"):
        load_data(str(h5ad["csr"][0].with_suffix(".npz")), layer="counts")
    (tmp_path / "bad.h5ad").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(200))
    with pytest.raises(VaekitError, match=r"could not read \.h5ad '.*bad.h5ad'"):
        load_data(str(tmp_path / "bad.h5ad"))


def test_h5ad_obs_columns_as_covariates_beside_the_label(h5ad, tmp_path):
    """--covariate batch,donor (integer and string obs columns) and --label-column cell_type (categorical)."""
    path = h5ad["csr"][0]
    splits = load_data(str(path), layer="counts", label_column="cell_type", covariates=["batch", "donor"],
                       counts=True)
    assert [c["categories"] for c in splits.info.covariates] == [["0", "1"], ["d1", "d10", "d2"]]
    assert splits.info.counts and splits.info.class_names == ["B", "NK", "T"]
    train, whole = splits.train, torch.from_numpy(h5ad["csr"][1])
    assert train.c.shape == (len(train), 3)
    codes = lambda i: [["B", "NK", "T"].index(["T", "B", "NK", "T"][i % 4]), i % 2,  # noqa: E731
                       ["d1", "d10", "d2"].index(["d2", "d1", "d10"][i % 3])]
    for x, c in zip(train.x[:30], train.c[:30].tolist()):  # the cell's own codes (of a row equal to it)
        assert c in [codes(int(i)) for i in torch.nonzero((whole == x).all(1))[:, 0]]
    with pytest.raises(VaekitError, match=r"csr.h5ad' has no obs column 'sample' \(--covariate\); its obs columns "
                                          r"are: cell_type, batch, donor"):
        load_data(str(path), layer="counts", covariates=["sample"])
    run = train_run(str(path), layer="counts", likelihood="nb", covariate="batch", label_column="cell_type",
                    epochs=1, hidden="8", latent_dim=2, out=tmp_path / "run", progress=False)
    assert run.model.covariates == {"batch": 2} and run.info.class_names == ["B", "NK", "T"]


def test_hugging_face_datasets_saved_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    from PIL import Image

    images = [Image.fromarray((RNG.random((8, 8)) * 255).astype(np.uint8)) for _ in range(40)]
    feats = datasets.Features({"img": datasets.Image(), "label": datasets.ClassLabel(names=["zero", "one"])})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        datasets.disable_progress_bars()
        datasets.Dataset.from_dict({"img": images, "label": [i % 2 for i in range(40)]}, features=feats) \
            .save_to_disk(str(tmp_path / "img"))
        table = datasets.Dataset.from_dict({"a": VALUES[:, 0], "b": VALUES[:, 1], "kind": NAMES.tolist()})
        datasets.DatasetDict({"train": table.select(range(150)), "test": table.select(range(150, N))}) \
            .save_to_disk(str(tmp_path / "table"))
    img = load_data(f"hf-disk:{tmp_path / 'img'}")
    assert img.info.kind == "image" and img.info.shape == (1, 8, 8) and img.info.class_names == ["zero", "one"]
    assert img.info.extra["levels"] == 256 and len(img.train) + len(img.val) + len(img.test) == 40
    tab = load_data(f"hf-disk:{tmp_path / 'table'}", label_column="kind")
    assert tab.info.extra["test_split"] == "official" and len(tab.test) == N - 150
    assert tab.info.columns == ["a", "b"] and tab.info.class_names == ["a", "b", "c"]
    with pytest.raises(VaekitError, match="no column 'pixels'"):
        load_data(f"hf-disk:{tmp_path / 'img'}", image_column="pixels")
    with pytest.raises(VaekitError, match="hf-disk folder .* does not exist"):
        load_data(f"hf-disk:{tmp_path / 'nothing'}")


def test_hub_dataset_offline_and_not_cached_is_one_clear_error(monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path, raising=False)
    with pytest.raises(VaekitError, match=r"could not load Hugging Face dataset 'hf://datasets/nobody/none'.*offline"):
        load_data("hf://datasets/nobody/none")


def test_a_missing_extra_names_it(monkeypatch, tables, h5ad):
    for module in ("pyarrow", "h5py", "datasets"):
        monkeypatch.setitem(sys.modules, module, None)
    for source in (tables / "t.parquet", h5ad["csr"][0], "hf-disk:x"):
        with pytest.raises(VaekitError, match=r"needs the \w+ package: pip install 'vaekit\[formats\]'"):
            load_data(str(source))


class Pairs(torch.utils.data.Dataset):
    def __len__(self):
        return N

    def __getitem__(self, i):
        return torch.tensor(VALUES[i], dtype=torch.float32), i % 3


def test_torch_dataset_in_the_python_api(tmp_path):
    run = train_run(Pairs(), out=tmp_path / "run", epochs=1, hidden="8", latent_dim=2, batch_size=64,
                           likelihood="gaussian", progress=False)
    assert run.config.data.source == "python:Pairs" and run.info.num_classes == 3 and run.info.shape == (D,)
    from vaekit.app.workflows import run_data

    with pytest.raises(VaekitError, match="in-memory Python dataset .* cannot reload"):
        run_data(run)
    assert len(run_data(run, Pairs())) > 0  # data passed again works
    with pytest.raises(VaekitError, match="items must be x or \\(x, y\\)"):
        load_data(_Triples())


class _Triples(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.zeros(2), 0, 1
