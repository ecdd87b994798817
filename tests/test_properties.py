"""Bad input, systematically: property-based tests over every reader of user files.

The YAML reader, the config validator, the `--set` parser, the checkpoint reader and the npz / CSV / IDX /
CIFAR-10 loaders get random bytes, truncations at every length of a valid file, single bit flips, huge declared
shapes, deep nesting, long strings and non-UTF-8 file names. Every input must end either in a result or in one
`MlcliError` of the reader's kind (ConfigError exit 2, DataError exit 3, CheckpointError exit 4) with a
non-empty message (which the CLI prints on one line, whitespace collapsed): never another exception, a traceback, a hang or a MemoryError.

Each input runs in a `Sandbox`: a forked child process under an address-space cap (RLIMIT_AS, 1 GiB above what
it had when forked) and a time cap (10 s per input), reused across inputs so that the whole file stays fast.
Hypothesis runs derandomized (the same examples on every run), so CI is stable.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import struct
import tempfile
import traceback
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

resource = pytest.importorskip("resource")

CAP_BYTES = 1 << 30
TIME_CAP_S = 10.0
EXIT_CODES = {"yaml_text": 2, "yaml_file": 2, "config": 2, "set": 2, "checkpoint": 4, "npz": 3, "csv": 3,
              "idx_images": 3, "idx_labels": 3, "cifar_bin": 3, "cifar_py": 3}

VALID_CONFIG = {
    "name": "p",
    "data": {"type": "spirals", "n_samples": 60},
    "model": {"type": "mlp", "hidden": [4]},
    "train": {"epochs": 1, "batch_size": 16, "optimizer": {"type": "sgd", "lr": 0.1}},
}


# ------------------------------------------------------------------------------------------ the sandbox


def _run(kind: str, payload, workdir: Path) -> None:
    """Feed one input to the reader `kind`; file inputs are (name bytes, content bytes)."""
    from mlcli.config.load import build_config
    from mlcli.config.yaml_reader import load_yaml, load_yaml_text

    if kind == "yaml_text":
        load_yaml_text(payload, "c.yaml")
        return
    if kind == "config":
        build_config(payload, "c.yaml", {})
        return
    if kind == "set":
        build_config(VALID_CONFIG, "c.yaml", {}, overrides=[payload])
        return
    name, content = payload
    path = Path(os.fsdecode(os.path.join(os.fsencode(workdir), name)))
    path.write_bytes(content)
    try:
        _read_file(kind, path, load_yaml)
    finally:
        path.unlink()


def _read_file(kind: str, path: Path, load_yaml) -> None:
    from mlcli.data import images, restricted_unpickle
    from mlcli.data.formats import load_csv, load_npz
    from mlcli.data.validate import check_dataset
    from mlcli.runs.snapshot import load_model

    if kind == "yaml_file":
        load_yaml(path)
    elif kind == "checkpoint":
        load_model(path)
    elif kind == "npz":
        check_dataset(load_npz(path, task="classification"))
    elif kind == "csv":
        check_dataset(load_csv(path, label_column="y", task="classification"))
    elif kind == "idx_images":
        images.load_idx_images(path)
    elif kind == "idx_labels":
        images.load_idx_labels(path)
    elif kind in ("cifar_bin", "cifar_py"):
        read = images.load_cifar10_binary_batch if kind == "cifar_bin" else restricted_unpickle.read_cifar_python_batch
        read(path)
    else:
        raise AssertionError(kind)


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


def _serve(conn, workdir: str) -> None:
    """The child: cap its address space, then answer (kind, payload) with (status, exit code, message)."""
    from mlcli.errors import MlcliError

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (_vm_size() + CAP_BYTES, hard))
    while True:
        request = conn.recv()
        if request is None:
            return
        try:
            _run(*request, Path(workdir))
            conn.send(("ok", 0, ""))
        except MlcliError as err:
            conn.send(("error", err.exit_code, str(err)))
        except BaseException:  # exactly what the properties forbid: report it to the test
            conn.send(("crash", 1, traceback.format_exc()))


class Sandbox:
    """A forked child with RLIMIT_AS set that reads one input at a time, killed and replaced after a hang."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.count: dict[str, int] = {}
        self._start()

    def _start(self) -> None:
        parent, child = multiprocessing.get_context("fork").Pipe()
        self.conn = parent
        self.proc = multiprocessing.get_context("fork").Process(target=_serve, args=(child, str(self.workdir)),
                                                                 daemon=True)
        self.proc.start()

    def run(self, kind: str, payload) -> tuple[str, int, str]:
        self.count[kind] = self.count.get(kind, 0) + 1
        self.conn.send((kind, payload))
        if not self.conn.poll(TIME_CAP_S):
            self.close()
            self._start()
            return "hang", 1, f"no answer within {TIME_CAP_S} s"
        try:
            return self.conn.recv()
        except EOFError:
            self._start()
            return "died", 1, "the reader's process died (killed by the memory cap?)"

    def close(self) -> None:
        self.proc.kill()
        self.proc.join()

    def check(self, kind: str, payload, *, must_fail: bool = False) -> str:
        """Assert the input ends in a result or a clean one-line error of `kind`'s exit code."""
        status, code, message = self.run(kind, payload)
        assert status in ("ok", "error"), f"{kind}: {status}: {message}"
        if status == "error":
            assert code == EXIT_CODES[kind], f"{kind}: exit {code} for: {message}"
            # the CLI prints `error: ` + the message with its whitespace collapsed: one line, whatever it holds
            assert " ".join(message.split()) and "Traceback" not in message, repr(message)
        else:
            assert not must_fail, f"{kind}: accepted an input that must be refused"
        return status


@pytest.fixture(scope="module")
def sandbox():
    with tempfile.TemporaryDirectory() as workdir:
        box = Sandbox(Path(workdir))
        yield box
        print("\nexamples per reader:", dict(sorted(box.count.items())))
        box.conn.send(None)
        box.proc.join(5)
        box.close()


FAST = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
FEW = settings(FAST, max_examples=40)


# -------------------------------------------------------------------------------------------- valid files


def npz_bytes() -> bytes:
    f = io.BytesIO()
    np.savez(f, x=np.arange(12, dtype=np.float64).reshape(6, 2), y=np.array([0, 1, 0, 1, 2, 2]))
    return f.getvalue()


CSV_BYTES = b"a,b,y\n1,2,cat\n3,4.5,dog\n5,6,cat\n7,8,dog\n"
IDX_IMAGES = struct.pack(">4I", 2051, 2, 3, 3) + bytes(range(18))
IDX_LABELS = struct.pack(">2I", 2049, 4) + bytes([0, 1, 2, 9])
CIFAR_BIN = bytes([3]) + bytes(3072) + bytes([7]) + bytes(range(256)) * 12
CIFAR_PY = pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1, 2]}, protocol=4)
CONFIG_YAML = b"""name: p
data: {type: spirals, n_samples: 60}
model:
  type: mlp
  hidden: [4]
train: {epochs: 1, batch_size: 16, optimizer: {type: sgd, lr: 0.1}}
"""
VALID_FILES = {"npz": npz_bytes(), "csv": CSV_BYTES, "idx_images": IDX_IMAGES, "idx_labels": IDX_LABELS,
               "cifar_bin": CIFAR_BIN, "cifar_py": CIFAR_PY, "yaml_file": CONFIG_YAML}


@pytest.fixture(scope="module")
def checkpoint_bytes(tmp_path_factory) -> bytes:
    import mlcli

    result = mlcli.train(VALID_CONFIG, runs_dir=tmp_path_factory.mktemp("runs"))
    return result.best_checkpoint.read_bytes()


def test_valid_files_are_read(sandbox, checkpoint_bytes):
    for kind, content in {**VALID_FILES, "checkpoint": checkpoint_bytes}.items():
        assert sandbox.run(kind, (b"f", content)) == ("ok", 0, ""), kind


# ---------------------------------------------------------------- truncations at every length, bit flips


@pytest.mark.parametrize("kind", sorted(VALID_FILES))
def test_every_truncation_of_a_valid_file_is_a_clean_error(sandbox, kind):
    content = VALID_FILES[kind]
    # a CSV or YAML cut at a line end can still be a valid, shorter file; every binary format must refuse
    must_fail = kind not in ("csv", "yaml_file")
    for n in truncation_lengths(len(content)):
        sandbox.check(kind, (b"f", content[:n]), must_fail=must_fail)


def test_every_truncation_of_a_checkpoint_is_refused(sandbox, checkpoint_bytes):
    for n in truncation_lengths(len(checkpoint_bytes)):
        sandbox.check("checkpoint", (b"c.npz", checkpoint_bytes[:n]), must_fail=True)


def truncation_lengths(size: int, most: int = 1200) -> range:
    """Every length 0..size-1 when there are at most `most`, else `most` evenly spaced ones from 0."""
    return range(0, size, max(1, -(-size // most)))


@FAST
@given(data=st.data())
@pytest.mark.parametrize("kind", sorted(VALID_FILES))
def test_single_bit_flips_are_read_or_cleanly_refused(sandbox, kind, data):
    content = bytearray(VALID_FILES[kind])
    bit = data.draw(st.integers(0, 8 * len(content) - 1))
    content[bit // 8] ^= 1 << (bit % 8)
    sandbox.check(kind, (b"f", bytes(content)))


@FAST
@given(bit=st.integers(min_value=0))
def test_single_bit_flips_in_a_checkpoint_are_read_or_refused(sandbox, checkpoint_bytes, bit):
    content = bytearray(checkpoint_bytes)
    bit %= 8 * len(content)
    content[bit // 8] ^= 1 << (bit % 8)
    sandbox.check("checkpoint", (b"c.npz", bytes(content)))


@FAST
@given(content=st.binary(max_size=4096), kind=st.sampled_from(sorted({*VALID_FILES, "checkpoint"})))
def test_random_bytes_are_cleanly_refused(sandbox, content, kind):
    sandbox.check(kind, (b"f", content))


@FEW
@given(prefix=st.sampled_from([b"PK\x03\x04", b"\x93NUMPY\x01\x00", b"\x1f\x8b", struct.pack(">I", 2051),
                               b"\x80\x04", b"name: x\n"]),
       tail=st.binary(max_size=2048), kind=st.sampled_from(sorted({*VALID_FILES, "checkpoint"})))
def test_random_bytes_after_a_plausible_magic_are_cleanly_refused(sandbox, prefix, tail, kind):
    sandbox.check(kind, (b"f", prefix + tail))


# -------------------------------------------------------------------------------------- huge declared shapes


def npy_header(shape, descr="<f8") -> bytes:
    f = io.BytesIO()
    np.lib.format.write_array_header_1_0(f, {"descr": descr, "fortran_order": False, "shape": tuple(shape)})
    return f.getvalue()


@FAST
@given(shape=st.lists(st.integers(0, 2**62), min_size=1, max_size=5),
       descr=st.sampled_from(["<f8", "|u1", "<i8", "<U1000", "|O"]), member=st.sampled_from(["x.npy", "y.npy"]))
def test_npz_with_huge_declared_shapes_is_refused_before_allocating(sandbox, shape, descr, member):
    import zipfile

    f = io.BytesIO()
    with zipfile.ZipFile(f, "w") as zf:
        other = "y.npy" if member == "x.npy" else "x.npy"
        zf.writestr(other, npy_header((2, 2)) + bytes(32))
        zf.writestr(member, npy_header(shape, descr) + bytes(64))
    sandbox.check("npz", (b"h.npz", f.getvalue()))


@FAST
@given(dims=st.tuples(*[st.integers(0, 2**32 - 1)] * 3), gz=st.booleans())
def test_idx_with_huge_declared_dims_is_refused_before_allocating(sandbox, dims, gz):
    import gzip

    content = struct.pack(">4I", 2051, *dims) + bytes(256)
    sandbox.check("idx_images", (b"i", gzip.compress(content) if gz else content), must_fail=math_prod(dims) != 256)


def math_prod(values) -> int:
    out = 1
    for v in values:
        out *= v
    return out


def test_csv_with_one_huge_cell_among_many_rows_fits_in_memory(sandbox):
    # a fixed-width string array of all cells would need 20001 rows x 2 columns x 100000 chars x 4 bytes = 16 GB
    rows = "".join(f"{i},{i % 2}\n" for i in range(20000))
    content = f"a,y\n1,{'c' * 100_000}\n{rows}".encode()
    assert sandbox.check("csv", (b"big.csv", content)) == "ok"


# --------------------------------------------------------------------------------------- YAML and configs


YAML_TOKENS = ["{", "}", "[", "]", ":", ": ", "- ", ",", "\n", "  ", "key", "lr", "data", "type", "'", '"', "#",
               "1e-3", "? ", "|", ">", "&a ", "*a", "!!python/object/apply:os.system ", "!x ", "%YAML 1.2\n",
               "---\n", "...\n", "\t", "\\", "~", "null", ".inf", "0x1f", "9" * 30, "\u00e9", "\x00", "\ufeff"]


@FAST
@given(text=st.text(max_size=300))
def test_random_yaml_text_is_read_or_cleanly_refused(sandbox, text):
    sandbox.check("yaml_text", text)


@FAST
@given(tokens=st.lists(st.sampled_from(YAML_TOKENS), max_size=60))
def test_yaml_from_syntax_fragments_is_read_or_cleanly_refused(sandbox, tokens):
    sandbox.check("yaml_text", "".join(tokens))


@settings(FEW, max_examples=20)
@given(depth=st.integers(1, 5_000), style=st.sampled_from(["[", "{a: ", "- ", "a:\n"]))
def test_deep_nesting_is_read_or_cleanly_refused(sandbox, depth, style):
    if style == "a:\n":
        text = "".join(" " * i + "a:\n" for i in range(min(depth, 2000)))
    elif style == "- ":
        text = "x: " + "- " * depth + "1\n"
    else:
        text = "x: " + style * depth
    sandbox.check("yaml_text", text)


@settings(FEW, max_examples=15)
@given(n=st.integers(0, 3 << 20), where=st.sampled_from(["key", "value", "quoted"]))
def test_long_strings_are_read_or_refused_by_the_size_cap(sandbox, n, where):
    long = "k" * n
    text = {"key": f"{long}: 1\n", "value": f"name: {long}\n", "quoted": f"name: '{long}'\n"}[where]
    status = sandbox.check("yaml_text", text)
    assert status == "error" or len(text.encode()) <= 1 << 20


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
CONFIG_PATHS = [("name",), ("seed",), ("data",), ("data", "type"), ("data", "n_samples"), ("data", "val_fraction"),
                ("data", "test_fraction"), ("data", "augment"), ("model",), ("model", "type"), ("model", "hidden"),
                ("train",), ("train", "epochs"), ("train", "batch_size"), ("train", "optimizer"),
                ("train", "optimizer", "type"), ("train", "optimizer", "lr"), ("loss",), ("typo",)]


@FAST
@given(path=st.sampled_from(CONFIG_PATHS), value=JSON)
def test_a_valid_config_with_one_field_replaced_validates_or_is_a_config_error(sandbox, path, value):
    data = pickle.loads(pickle.dumps(VALID_CONFIG))
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    sandbox.check("config", data)


@FEW
@given(data=JSON)
def test_random_top_level_data_is_a_config_error(sandbox, data):
    sandbox.check("config", data)


SET_KEYS = ["train.optimizer.lr", "model.hidden.0", "model.hidden.9", "data", "data.type", "train.epochs.x", "",
            ".", "a..b", "model.hidden.-1", "train.optimizer", "seed", "x" * 300]


@FAST
@given(item=st.text(max_size=80))
def test_random_set_items_apply_or_are_config_errors(sandbox, item):
    sandbox.check("set", item)


@FAST
@given(key=st.sampled_from(SET_KEYS), value=st.sampled_from([*YAML_TOKENS, "0.01", "[1, 2]", "{a: 1}", ""])
       | st.text(max_size=30))
def test_structured_set_items_apply_or_are_config_errors(sandbox, key, value):
    sandbox.check("set", f"{key}={value}")


# ------------------------------------------------------------------------------------------ file names


NAMES = st.binary(min_size=1, max_size=120).filter(lambda b: b"/" not in b and b"\0" not in b
                                                   and b not in (b".", b".."))


@FEW
@given(name=NAMES, kind=st.sampled_from(["npz", "csv", "yaml_file", "idx_labels", "checkpoint"]))
def test_non_utf8_file_names_are_read_or_refused_by_name(sandbox, checkpoint_bytes, name, kind):
    content = checkpoint_bytes if kind == "checkpoint" else VALID_FILES[kind]
    assert sandbox.check(kind, (name, content)) == "ok"
    sandbox.check(kind, (name, content[:-1]), must_fail=kind not in ("csv", "yaml_file"))


# ------------------------------------------------------------------------------------------ nothing runs


def test_hostile_inputs_run_nothing(sandbox, tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    hostile = pickle.dumps({b"data": Evil(), b"labels": [0]}, protocol=4)
    sandbox.check("cifar_py", (b"evil", hostile), must_fail=True)
    sandbox.check("yaml_text", f"name: !!python/object/apply:os.system ['touch {marker}']\n", must_fail=True)
    f = io.BytesIO()
    np.savez(f, x=np.array([Evil()], dtype=object), y=np.zeros(1))
    sandbox.check("npz", (b"evil.npz", f.getvalue()), must_fail=True)
    assert not marker.exists()
