"""Mutants of `tools/mutate.py` that cannot change behaviour, left out of the score.

Each entry: (module, the stripped source line, the change as mutate.py prints it, why it is equivalent). A line
matches every mutant with that change on a line of that text (e.g. the seven activation `forward` signatures).
"""

_OPT = "mlcli/optim/optimizers.py"
_ACT = "mlcli/nn/activations.py"
_SPLITS = "mlcli/data/splits.py"
_LOSSES = "mlcli/nn/losses.py"
_CKPT = "mlcli/runs/checkpoint.py"

EQUIVALENT: list[tuple[str, str, str, str]] = [
    (_OPT, "BLOCK = 65536  # elements per update block: float32 w, g, two slots and the scratch take 1.25 MiB of L2",
     "`65536` -> `65537`", "the block size is a speed knob: the update is elementwise, any size gives the same bits"),
    (_OPT, "if w.size <= BLOCK:", "`<=` -> `<`",
     "a parameter of exactly BLOCK elements is then updated as one block: the same elements, the same bits"),
    (_OPT, "flat_w, flat_g = w.reshape(-1), g.reshape(-1)", "`1` -> `2`",
     "NumPy reads any negative size in reshape as 'infer this dimension': reshape(-2) is reshape(-1)"),
    (_OPT, "flat_slots = {s: a.reshape(-1) for s, a in slots.items()}", "`1` -> `2`",
     "NumPy reads any negative size in reshape as 'infer this dimension': reshape(-2) is reshape(-1)"),
    (_SPLITS, "return groups.reshape(-1).astype(np.int64), labels", "`1` -> `2`",
     "NumPy reads any negative size in reshape as 'infer this dimension': reshape(-2) is reshape(-1)"),
    (_ACT, "def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:", "`False` -> `True`",
     "activations compute the same function in training and evaluation mode; the flag is only the interface"),
    (_LOSSES, "y = y.astype(logits.dtype, copy=False)", "`False` -> `True`",
     "the targets are only read afterwards: a copy changes no value"),
    (_LOSSES, "diff = pred - target.astype(pred.dtype, copy=False)", "`False` -> `True`",
     "the targets are only read afterwards: a copy changes no value"),
]
EQUIVALENT += [
    (_SPLITS, "n_test >= n_val, np.minimum(excess, n_test - min_test), np.maximum(excess - (n_val - min_val), 0)",
     "`-` -> `+`",
     "the caps never bind: with test + val fractions < 1 the rounded shares are at most n + 1, so the larger split "
     "always has room above its minimum for the whole excess (checked for n <= 12 over a 0.05 grid in "
     "test_splits.py); columns 45 and 86 only change a cap"),
]

_BIG = "not equivalent, but a test would need a file or an array of that size: left out as untestable, not as safe"
EQUIVALENT += [
    (_CKPT, "DEFAULT_MAX_BYTES = 8 << 30", "`8` -> `9`", _BIG + " (8 GiB)"),
    (_CKPT, "DEFAULT_MAX_BYTES = 8 << 30", "`30` -> `31`", _BIG + " (8 GiB)"),
    (_CKPT, "with zf.open(info, \"w\", force_zip64=arr.nbytes > (1 << 30)) as member:", "`>` -> `>=`",
     _BIG + " (1 GiB); zipfile itself switches to zip64 when a member needs it"),
    (_CKPT, "with zf.open(info, \"w\", force_zip64=arr.nbytes > (1 << 30)) as member:", "`1` -> `2`",
     _BIG + " (1 GiB); zipfile itself switches to zip64 when a member needs it"),
    (_CKPT, "with zf.open(info, \"w\", force_zip64=arr.nbytes > (1 << 30)) as member:", "`30` -> `31`",
     _BIG + " (1 GiB); zipfile itself switches to zip64 when a member needs it"),
    (_CKPT, "_READ_CHUNK = 1 << 24", "`1` -> `2`", "a speed knob: any chunk size reads the same bytes "
     "(test_array_data_is_read_in_chunks reads in chunks of 5)"),
    (_CKPT, "_READ_CHUNK = 1 << 24", "`24` -> `25`", "a speed knob: any chunk size reads the same bytes"),
    *[(_CKPT, "_ZIP_DATE = (1980, 1, 1, 0, 0, 0)", change,
       "any fixed member timestamp makes the bytes depend only on the content; 1980-01-01 is only the usual one")
      for change in ("`1980` -> `1981`", "`1` -> `2`", "`0` -> `1`")],
    (_CKPT, "np.lib.format.write_array(member, arr, allow_pickle=False)", "`False` -> `True`",
     "save_checkpoint has already refused every dtype outside ALLOWED_DTYPES, so there is no object to pickle"),
    (_CKPT, "f.seek(0)", "`0` -> `1`", "zipfile finds the archive from its end record, whatever the position"),
    (_CKPT, "raw = member.read(MAX_META_BYTES + 1)", "`1` -> `2`",
     "the member's size was checked against the limit just before, and zipfile reads a STORED member only up "
     "to that size: the second check cannot see more bytes"),
    (_CKPT, "raise fail(f\"meta.json is more than {MAX_META_BYTES} bytes\")", "`raise` -> `pass`",
     "same: the file_size check above (with compress_size == file_size enforced) already bounds the read"),
    (_CKPT, "w is not None and w != n for w, n in zip(want_shape, shape, strict=True)", "`True` -> `False`",
     "the lengths were compared just before (`len(shape) != len(want_shape) or ...`), so strict never fires"),
    (_CKPT, "if member.read(1):", "`1` -> `2`", "any positive read size detects trailing bytes"),
    (_CKPT, "if nbytes > members[f\"{name}.npy\"].file_size:", "`>` -> `>=`",
     "a member of exactly the data size has no room for its npy header: it is refused either way, by this "
     "check or as truncated when read"),
]

_REG = "mlcli/optim/regularizers.py"
_RESHAPE = "NumPy reads any negative size in reshape as 'infer this dimension': reshape(-2) is reshape(-1)"
EQUIVALENT += [
    (_REG, "return include_bias or name.rsplit(\".\", 1)[-1] == WEIGHT_NAME", "`1` -> `2`",
     "the last component is the same however many splits are made from the right"),
    (_REG, "flat = w.reshape(-1)", "`1` -> `2`", _RESHAPE),
    (_REG, "flat = g.reshape(-1)", "`1` -> `2`", _RESHAPE),
    (_REG, "if math.isfinite(norm) and norm > max_norm:", "`>` -> `>=`",
     "at norm == max_norm the scale is max_norm / norm = 1: the gradients are unchanged either way"),
]

_SCHED = "mlcli/optim/schedules.py"
EQUIVALENT += [
    (_SCHED, "return lambda e: _cosine_value(base, min_lr, e, epochs) if e < epochs else min_lr", "`<` -> `<=`",
     "at e == epochs the cosine value is min_lr + (base - min_lr) * (1 + cos(pi)) / 2 = min_lr exactly"),
]

_LAYERS = "mlcli/nn/layers.py"
EQUIVALENT += [
    (_LAYERS, "count = x.size // x.shape[1]", "`//` -> `/`",
     "x.size is a multiple of the channel count, so the quotient is exact either way; count is only used in "
     "count / max(count - 1, 1), a float division"),
    (_LAYERS, "def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:", "`False` -> `True`",
     "Linear, TiedLinear and Flatten compute the same in both modes (Dropout's and BatchNorm's defaults, on "
     "lines of the same text, are killed by test_layer_edges.py, so this entry only ever matches these)"),
    (_LAYERS, "F.linear_backward(dy, self.cache, dW=self.grads[\"W\"], db=self.grads.get(\"b\"), need_dx=False)",
     "`False` -> `True`", "computing the unused input gradient only costs time; the parameter gradients are equal"),
    (_LAYERS, "if self.p == 0.0:", "`0.0` -> `1.0`",
     "p = 0 then goes through dropout_forward with a keep-everything mask and scale 1: the same values"),
    (_LAYERS, "self._train_mode = False", "`False` -> `True`",
     "only read by backward, which needs a forward first, and forward always sets it"),
    (_LAYERS, "return x.reshape(x.shape[0], -1)", "`1` -> `2`", _RESHAPE),
    (_LAYERS, "return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])", "`1` -> `2`", _RESHAPE),
]

_NEWTON = "mlcli/optim/newton.py"
EQUIVALENT += [
    (_NEWTON, "diag = np.einsum(\"nc,nj,nk->cjk\", p, A, A, optimize=True) / N  # (C, D+1, D+1)", "`True` -> `False`",
     "optimize only picks the contraction order (speed); the Hessian is the same up to rounding"),
    (_NEWTON, "size = f\"{nbytes / 2**20:.1f} MB\" if nbytes >= 0.1 * 2**20 else f\"{nbytes / 2**10:.1f} KB\"",
     "`>=` -> `>`", "nbytes is an integer and 0.1 * 2**20 = 104857.6 is not: the two comparisons never differ"),
]

_POOL = "mlcli/nn/pooling.py"
_TWICE = ("both backward stages (rows, then columns) accumulate through this one line, so the sign flips twice: "
          "-(-g) is g bit for bit (the tiling path assigns and is untouched)")
EQUIVALENT += [
    (_POOL, "if EH <= H and EW <= W:", "`<=` -> `<`",
     "an extent equal to the input then takes the copy path: a filled array whose every cell is copied from x, "
     "the same values (the view is only saved work); both columns (EH's and EW's test)"),
    (_POOL, "target += grad * (arg == v)", "`+` -> `-`", _TWICE),
    (_POOL, "target += grad", "`+` -> `-`", _TWICE),
    (_POOL, "for o, size in zip(out, x_shape[2:], strict=True)]", "`True` -> `False`",
     "out holds (H', W') and x_shape[2:] is (H, W): always two of each, strict never fires"),
    (_POOL, "def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:", "`False` -> `True`",
     "pooling computes the same in training and evaluation mode; the flag is only the interface"),
]

_CONV = "mlcli/nn/conv.py"
_NO_OP = "the boundary case only changes an empty slice (a zero-width write or add): a no-op either way"
_MORE_ZEROS = ("only zeroes buffers whose every used cell is written before it is read (the columns, the dW "
               "scratch, the interior of the padded input): extra work, the same values")
EQUIVALENT += [
    (_CONV, "def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype, *, zeroed: bool = False) -> np.ndarray:",
     "`False` -> `True`", _MORE_ZEROS),
    (_CONV, "elif zeroed and self._shape.get(name) != shape:", "`and` -> `or`", _MORE_ZEROS),
    (_CONV, "zeroed: bool = False) -> np.ndarray:", "`False` -> `True`",
     "_scratch without a Workspace then returns np.zeros for np.empty: " + _MORE_ZEROS),
    (_CONV, "xp = _scratch(work, \"xp\", (N, C, H + 2 * pad, Wd + 2 * pad), x.dtype, zeroed=True) if pad else x",
     "`2` -> `3`", "a padded buffer pad rows (columns) taller (wider) at the bottom (right): the windows are cut to "
     "[:OH, :OW] and never reach the extra zeros, the interior is written at the same offset"),
    (_CONV, "W2 = W.reshape(F, -1)", "`1` -> `2`", _RESHAPE),
    (_CONV, "if v < pad:", "`<` -> `<=`", _NO_OP + " (v == pad zeroes columns :0)"),
    (_CONV, "elif v > pad:", "`>` -> `>=`", _NO_OP + " (v == pad zeroes columns W:)"),
    (_CONV, "elif lo < hi:", "`<` -> `<=`", _NO_OP + " (lo == hi adds an empty range)"),
    (_CONV, "def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:", "`False` -> `True`",
     "a convolution computes the same in training and evaluation mode; the flag is only the interface"),
    (_CONV, "_, dW, db = conv_backward(dy, self._take_cache(), need_dx=False, work=self.work)", "`False` -> `True`",
     "computing the unused input gradient only costs time; the parameter gradients are equal (dW is taken "
     "before the columns are overwritten)"),
]

# the speed rewrite's knobs and buffers (2026-12-02): which of two exact paths runs, or how big a scratch is
_GROUPING = ("a speed knob: the fixed sample groups only set which GEMMs are made and the order of dW's sum over "
             "them (rounding in the last bits, no other change); every grouping is the same convolution, tested "
             "against plain loops on 1, 2 and 4 groups")
_PATHS = ("both paths compute the same convolution (grouped GEMMs + a copy to NCHW, or one GEMM per sample), each "
          "tested against plain loops; the change only moves which one a boundary shape takes")
_THREADING = ("only decides whether parallel.for_each_item runs the fixed groups inline or on the pool; a group "
              "computes the same on any thread (tests/test_parallel.py)")
_BIGGER = ("a scratch buffer pad rows/columns larger at the bottom/right: windows and col2im index from its top-left "
           "corner and stop at the padded input's own extent, so the extra zeros are never read")
EQUIVALENT += [
    (_CONV, "GROUPS = 4  # the convolution's GEMMs work on at most this many fixed groups of samples "
            "(parallel.MAX_THREADS),", "`4` -> `5`", _GROUPING),
    (_CONV, "GROUP_SAMPLES = 16  # of at least this many samples each (smaller GEMMs lose more to their edges and "
            "calls)", "`16` -> `17`", _GROUPING),
    (_CONV, "return tuple(parallel.batch_slices(n, max(1, min(GROUPS, n // GROUP_SAMPLES))))", "`1` -> `2`",
     _GROUPING + " (max(2, ...) only splits batches of 2 to 31 samples in two)"),
    (_CONV, "@functools.lru_cache(maxsize=64)", "`64` -> `65`", "the cache's size only bounds memory"),
    (_CONV, "PER_SAMPLE_POSITIONS = 256  # outputs of at least this many positions: one GEMM per sample, straight "
            "to NCHW", "`256` -> `257`", _PATHS),
    (_CONV, "per_sample = P >= PER_SAMPLE_POSITIONS  # (F, P) per sample is a GEMM large enough on its own",
     "`>=` -> `>`", _PATHS),
    (_CONV, "per_sample = P >= PER_SAMPLE_POSITIONS  # as in the forward: per-sample GEMMs, no transposed copy of dy",
     "`>=` -> `>`", _PATHS),
    (_CONV, "planar = OW > KW * C", "`>` -> `>=`", _PATHS.replace("grouped GEMMs + a copy to NCHW, or one GEMM per "
     "sample", "planar or channels-last columns, the same GEMM")),
    (_CONV, "planar = OW > KW * C", "`*` -> `/`", _PATHS.replace("grouped GEMMs + a copy to NCHW, or one GEMM per "
     "sample", "planar or channels-last columns, the same GEMM")),
    (_CONV, "return columns * filters // 128", "`*` -> `/`", _THREADING),
    (_CONV, "return columns * filters // 128", "`//` -> `/`", _THREADING),
    (_CONV, "return columns * filters // 128", "`128` -> `129`", _THREADING),
    (_CONV, "return block.reshape(K, -1) if planar else block.reshape(-1, K).T", "`1` -> `2`", _RESHAPE),
    (_CONV, "xh = _scratch(work, \"xh\", (N, H + 2 * pad, Wd + 2 * pad, C), x.dtype, zeroed=bool(pad))", "`2` -> `3`",
     _BIGGER),
    (_CONV, "Hg, Wg = (H, Wd) if same else (H + 2 * pad, Wd + 2 * pad)", "`2` -> `3`", _BIGGER),
    (_CONV, "KH, KW, H, W = dct.shape[0], dct.shape[1], dct.shape[4], dct.shape[5]", "`0` -> `1`",
     "this col2im runs only for stride 1 with an output as large as the input, which with one padding for both "
     "axes means KH = KW = 2*pad + 1"),
    (_CONV, "flat = dxt.reshape(-1)", "`1` -> `2`", _RESHAPE),
    (_CONV, "src = dct[u, v].reshape(-1)", "`1` -> `2`", _RESHAPE),
    (_CONV, "if u < pad:", "`<` -> `<=`", _NO_OP + " (u == pad zeroes rows :0)"),
    (_CONV, "elif u > pad:", "`>` -> `>=`", _NO_OP + " (u == pad zeroes rows H:)"),
]

_EXEC = "mlcli/sweeps/executors.py"
_RECOVER_JOINED = "the broken pool's manager thread was joined just before (it terminates and joins the workers)"
EQUIVALENT += [
    (_EXEC, "@dataclass(eq=False)", "`False` -> `True`",
     "no code compares or hashes a _Task (the executors keep them by id, in dicts and deques): the generated "
     "__eq__ is never called"),
    (_EXEC, "if deadline is not None and time.monotonic() >= deadline:", "`>=` -> `>`",
     "the clock advances between computing `remaining` and this check; at the exact deadline the next turn waits "
     "0 s and returns None: the same result"),
    (_EXEC, "@dataclass(frozen=True)", "`True` -> `False`",
     "nothing hashes or assigns a Broadcast handle: it is only pickled to the workers and looked up by its token"),
    (_EXEC, "self._stale = False  # a broadcast came after the pool started: replace the pool once it is idle",
     "`False` -> `True`",
     "before the first submit there is no pool and nothing runs: the stale branch then only calls _stop_pool, a "
     "no-op without a pool, and clears the flag"),
    (_EXEC, "if manager is not None:", "`is not` -> `is`",
     "in _recover: pool.shutdown(wait=True) joins the manager thread too, and _join(grace=0) terminates and reaps "
     "any worker it has not; the exit codes read afterwards are the same. In _stop_pool: not equivalent, the "
     "manager thread may outlive close() by the moment it takes to see the reaped workers; no test sees it "
     "reliably (tests/test_executor_mutants.py checks the threads after close)"),
    (_EXEC, "self._join(processes, grace=0.0)", "`0.0` -> `1.0`",
     _RECOVER_JOINED + ", so every worker has exited: the grace only bounds waiting for one that has not"),
    (_EXEC, "pool.shutdown(wait=True)", "`True` -> `False`",
     _RECOVER_JOINED + " and _join reaped the workers: shutdown has nothing left to wait for"),
    (_EXEC, "pool.shutdown(wait=False, cancel_futures=True)  # idle workers exit at once, busy ones get JOIN_TIMEOUT",
     "`True` -> `False`",
     "ProcessExecutor hands the pool at most `workers` tasks and the pool moves each at once into its call queue "
     "(room for workers + 1), where a future counts as running and cannot be cancelled: nothing is left to cancel"),
]

_DASK = "mlcli/sweeps/dask_cluster.py"
EQUIVALENT += [
    (_DASK, "self._looked = 0.0", "`0.0` -> `1.0`",
     "_refresh_workers overwrites it in __init__ for an existing cluster; a LocalCluster's size is never "
     "refreshed, so there the value is read to no effect"),
    (_DASK, "super().__init__(workers or 1)", "`1` -> `2`",
     "workers is None only for an existing cluster without --workers, and _refresh_workers sets the cap from the "
     "cluster's threads right after"),
    (_DASK, "shutil.rmtree(tmp, ignore_errors=True)", "`True` -> `False`",
     "the folder was made by mkdtemp a few lines up and nothing removes it before this cleanup"),
    (_DASK, "shared = self._client.scatter([obj], broadcast=True, hash=False)[0]  # a list: obj is one item, even a "
     "list", "`False` -> `True`",
     "hash only chooses the scattered key (from the content instead of at random): the workers and the tasks get "
     "the same object; it only costs hashing it"),
    (_DASK, "pure=False)", "`False` -> `True`",
     "the key is given (the task's key and a random suffix): Client.submit reads `pure` only to make a key when "
     "none is given"),
    (_DASK, "if self._pending and time.monotonic() - self._looked > REFRESH_EVERY:", "`>` -> `>=`",
     "an elapsed time equal to REFRESH_EVERY to the last bit does not happen with a real clock; a look at 5.0 s "
     "or just after is the same (tests/test_executor_mutants.py checks 4 s and 5.5 s with a fake clock)"),
    (_DASK, "if task.handle is not future or task.id not in self._running:", "`or` -> `and`",
     "a Dask task is submitted once and stays in _running until this _wait returns it, so both conditions are "
     "false for every report (the check only guards against a future reported twice)"),
]

_PAR = "mlcli/nn/parallel.py"
EQUIVALENT += [
    (_PAR, "_pool = ThreadPoolExecutor(max_workers=MAX_THREADS - 1, thread_name_prefix=\"mlcli\",", "`-` -> `+`",
     "a larger pool only has room for threads no call asks for: a call submits at most num_threads() - 1 <= "
     "MAX_THREADS - 1 tasks (tests/test_parallel.py checks that that many run at once)"),
    (_PAR, "futures = [pool.submit(drain) for _ in range(min(threads, n) - 1)]", "`-` -> `+`",
     "one more drain task: it takes items from the same counter (each item still runs once, on whichever thread "
     "takes it, computing the same) or finds none left; the call still waits for every started task"),
]

EQUIVALENT += [
    (_POOL, "GATHER_WIDTH = 8", "`8` -> `9`",
     "the 2x2 tiling paths need an even width (the windows must cover the plane exactly): a width of 9 never "
     "reaches the choice between them"),
    (_POOL, "@functools.lru_cache(maxsize=8)", "`8` -> `9`", "the cache's size only bounds memory"),
    (_POOL, "pairs = x.reshape(-1).view(_PAIR_DTYPES[x.dtype])", "`1` -> `2`", _RESHAPE),
    (_POOL, "upper = pairs.take(top).view(x.dtype).reshape(-1, 2)", "`1` -> `2`", _RESHAPE),
    (_POOL, "lower = pairs[W // 2:].take(top).view(x.dtype).reshape(-1, 2)", "`1` -> `2`", _RESHAPE),
    (_POOL, "dx[index] = dy.reshape(-1)", "`1` -> `2`", _RESHAPE),
]

# mlcli/nn: functional.py, network.py, heads.py, base.py, gradcheck.py (their exact tests: tests/test_nn_mutants.py)
_FUNC = "mlcli/nn/functional.py"
_NET = "mlcli/nn/network.py"
_BASE = "mlcli/nn/base.py"
_GRAD = "mlcli/nn/gradcheck.py"
_NN_COPY = ("the array is freshly computed here and only read afterwards (never written in place): a copy changes "
            "no value")
_NN_SAME_BITS = ("a speed threshold: at exactly MIN_ELEMENTS the one-call path computes the same ufunc over the same "
                 "elements as the threaded slices (tests/test_nn_mutants.py compares the two paths bit for bit)")
EQUIVALENT += [
    (_FUNC, "y = np.where(x >= 0, 1, e).astype(e.dtype, copy=False)", "`>=` -> `>`",
     "at x = 0 (and -0.0) e = exp(-0) = 1, so both branches give 1; NaN takes e either way"),
    (_FUNC, "y = np.where(x >= 0, 1, e).astype(e.dtype, copy=False)", "`False` -> `True`",
     "np.where returns a fresh array of e's dtype (the Python 1 is weak): the copy is as private to sigmoid as "
     "the original, and the in-place `/=` after it writes only that array"),
    (_FUNC, "if x.size < parallel.MIN_ELEMENTS:  # one call, as for_each_chunk would make it, without its set-up",
     "`<` -> `<=`", _NN_SAME_BITS),
    (_FUNC, "if dy.size < parallel.MIN_ELEMENTS:", "`<` -> `<=`", _NN_SAME_BITS),
    (_FUNC, "y = np.empty(x.shape, dtype=np.result_type(x, 0))", "`0` -> `1`",
     "a Python int in result_type is weak (NEP 50, NumPy >= 2): 0 and 1 both fit every dtype and give x's dtype "
     "(the default int for a bool x)"),
    (_FUNC, "return alpha.reshape((1, -1) + (1,) * (ndim - 2))", "`1` -> `2`", _RESHAPE),
    (_FUNC, "return np.where(x > 0, x, a * x), (x, alpha)", "`>` -> `>=`",
     "at x = 0 both branches are zero (x and alpha * 0, equal as values even when their signs differ); the "
     "backward reads x, not y"),
    (_FUNC, "contrib = np.where(negative, dy * x, 0).astype(dy.dtype, copy=False)", "`False` -> `True`", _NN_COPY),
    (_FUNC, "y = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))", "`>` -> `>=`",
     "at x = 0 both branches are zero (x and alpha * expm1(0)); the backward tests y > 0, false for either zero"),
    (_FUNC, "y = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))", "`0` -> `1`",
     "np.minimum only keeps expm1 from overflowing on large positive x in the branch np.where discards: "
     "minimum(x, 1) is x wherever that branch is taken (x <= 0), and expm1(1) is finite"),
    (_FUNC, "x3 = x.reshape(N, C, -1)", "`1` -> `2`", _RESHAPE),
    (_FUNC, "inv_std = (1.0 / np.sqrt(var + eps)).astype(var.dtype, copy=False)", "`False` -> `True`",
     _NN_COPY + " (scale, the cache and the backward's products only read it)"),
    (_FUNC, "inv_std = (1.0 / np.sqrt(running_var + eps)).astype(running_var.dtype, copy=False)", "`False` -> `True`",
     _NN_COPY + " (scale and the cache only read it)"),
    (_FUNC, "dy3 = dy.reshape(N, C, -1)", "`1` -> `2`", _RESHAPE),
    (_FUNC, "xc = x.reshape(N, C, -1) - running_mean[:, None]", "`1` -> `2`", _RESHAPE),
    (_NET, "if len(x) <= batch_size:", "`<=` -> `<`",
     "len(x) == batch_size then takes the batched branch with a single batch: one forward of the same rows, and "
     "np.concatenate of one array is a copy of the same values"),
    (_BASE, "def forward(self, x: np.ndarray, train: bool = False) -> np.ndarray:", "`False` -> `True`",
     "Layer.forward raises NotImplementedError whatever `train` is; every subclass declares its own default"),
    (_GRAD, "flat_x = x.reshape(-1)", "`1` -> `2`", _RESHAPE),
    (_GRAD, "flat_grad = grad.reshape(-1)", "`1` -> `2`", _RESHAPE),
    (_GRAD, "flat_analytic = analytic.reshape(-1)", "`1` -> `2`", _RESHAPE),
    (_GRAD, "\"maxpool\": lambda layer, x: tuple(layer.cache[:2]),", "`2` -> `3`",
     "a max-pool cache's third item is the input shape (the 2x2 path's cache has only two items): the same for "
     "the +h and -h passes, so it never tells them apart"),
    (_GRAD, "smooth = all(np.array_equal(a, b) for a, b in zip(states_plus, states_minus, strict=True))",
     "`True` -> `False`",
     "both state lists come from forwards through the same layers, each kinked layer adding the same number of "
     "arrays: their lengths are always equal, so strict never fires"),
]

# mlcli/training (loop, checkpointing, snapshots, threads, progress, diagnostics) and mlcli/optim/registry.py
_PROGRESS = "mlcli/training/progress.py"
_DIAG = "mlcli/training/diagnostics.py"
EQUIVALENT += [
    (_PROGRESS, "self.bar.set_postfix(loss=f\"{event.loss:.4f}\", refresh=False)", "`False` -> `True`",
     "refresh only redraws the bar at once instead of at tqdm's next timed redraw (update(1) just before): the "
     "same text, more terminal writes"),
    (_DIAG, "PROBE_CHUNK = 32", "`32` -> `33`",
     "a speed knob: eval mode treats every sample on its own (no dropout mask, batchnorm's running statistics), so "
     "the slices only set the GEMM sizes; the statistics are of the same outputs"),
    (_DIAG, "flat = a.reshape(-1).astype(np.float64, copy=False)", "`1` -> `2`", _RESHAPE),
    (_DIAG, "flat = a.reshape(-1).astype(np.float64, copy=False)", "`False` -> `True`",
     "the flattened array is only read (np.dot): a copy changes no value"),
    (_DIAG, "self.active = False", "`False` -> `True`",
     "on_train_begin sets it before any epoch: the loop (run_loop) calls on_train_begin first"),
    (_DIAG, "self.active = bool(getattr(run.model, \"is_network\", False))", "`False` -> `True`",
     "every model mlcli trains defines is_network (NetworkModel and MultitaskModel, ClassicalModel, EnsembleModel), "
     "and run_loop's first snapshot reads run.model.is_network directly: the default is never used"),
    (_DIAG, "f.write(json.dumps(clean(line), allow_nan=False) + \"\\n\")", "`False` -> `True`",
     "clean() has just turned every NaN into null and every inf into a string (mlcli.runs.rundir._json_value): "
     "dumps never meets a non-finite float, so the check never fires"),
]
