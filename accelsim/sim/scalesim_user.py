"""Emulation of SCALE-Sim 3.0.0's USER-bandwidth memory model (stalls and DRAM traffic).

What is emulated
----------------
SCALE-Sim (``scalesim==3.0.0``, MIT licence) runs a layer in two steps: the compute model builds
per-cycle *demand matrices* (one row per cycle, one column per array port) plus per-operand
*prefetch matrices*, then ``double_buffered_scratchpad_mem.service_memory_requests`` walks the
demand rows one at a time through two double-buffered read buffers (``memory/read_buffer.py``:
ifmap, filter) and a write buffer (``memory/write_buffer.py``: ofmap).  This module replays that
second step, event for event, without building the matrices:

* demand streams and prefetch orders for ``os``, ``ws`` and ``is`` are produced by index arithmetic
  (the operand-matrix address formulas of ``compute/operand_matrix.py``, the fold loop
  "column folds outer, row folds inner", skew / flip / prefix / suffix padding, and the
  anti-diagonal roll-out that SCALE-Sim applies to some prefetch matrices);
* the read buffer's "hashed buffer": the prefetch order, with null entries dropped, is cut into
  sets of ``ceil(total_size_elems / 100)`` elements; the active window holds
  ``num_active_buf_lines`` consecutive sets, *cyclically*, and every ``new_prefetch`` moves it on by
  ``num_prefetch_buf_lines`` sets (so once the window wraps past the end the whole operand is
  re-streamed from the start — the large DRAM counts of small SRAMs);
* the stall arithmetic of ``read_buffer.service_reads``: each row starts with ``offset = 1`` (hit
  latency); for each miss the "potential stall" ``last_prefetch_cycle - (cycle + offset)`` is
  added to ``offset`` (so a negative value *reduces* it) and, if positive, added a second time;
  prefetches are chained from ``last_prefetch_cycle`` no matter when they are requested
  (each one ends ``ceil(prefetch_buf_size / bw) + 1`` cycles after the previous one; the
  start-up fill ends at cycle -1);
* the write buffer: lines of ``bw`` words, a partial line closed whenever a drain starts, drains
  of ``ceil(drain_buf_size / bw)`` lines that are counted as ``lines*bw`` minus the nulls of the
  *last* line only (so a partial line in the middle of a drain is over-credited, as in SCALE-Sim),
  the "buffer full while draining" stall and the final flush ``empty_all_buffers``;
* the array-wide stall per row ``max(ifmap_out - cycle - 1, filter_out - cycle - 1,
  ofmap_out - cycle)``; reported "Total Cycles" = last serviced ofmap row; "Total Cycles (incl.
  prefetch)" = last ofmap DRAM drain cycle minus the earliest (negative) start-up fill cycle;
* DRAM counts: ``num_access`` of each buffer (whole request lines of ``bw`` words, including
  refetches of evicted data; the start-up fill is ``min(ceil(active/bw), fetch rows)*bw``).

Quirks reproduced: USER-mode ifmap/filter fill bandwidths are ``[layout] IfmapSRAMBankBandwidth`` /
``FilterSRAMBankBandwidth`` and ``Bandwidth[0]`` is only the ofmap drain bandwidth (the caller
passes them in :class:`ScaleSimArray`); ofmap size rounds up (``ceil((H-R+s)/s)``), and the
ifmap operand contains null entries for windows that run off the edge; OS ofmap SRAM writes are
double counted by ``folds*(R+C)``; the twice-added positive potential stall; the extra empty
hashed set when the number of elements is a multiple of the set size.

CALC mode (:func:`simulate_calc_mode`): reads never stall, so "Total Cycles" is the closed form;
"Total Cycles (incl. prefetch)" = ofmap DRAM stop - min(ifmap, filter DRAM start). The ofmap stop
comes from the same write-buffer replay, draining at ``ArrayWidth`` words/cycle (SCALE-Sim's CALC
default). ``read_buffer_estimate_bw``'s first DRAM request row (the trace's start) is, with ``U``
the operand's distinct addresses, ``items = floor(SRAM words / 100)`` and fill rate 10 words/cycle:
``-ceil(ceil(U / items) * items / 10)`` when the operand fits the active half (``U < 50 items``,
all of it fetched before cycle 0 by ``complete_all_prefetches``), else
``frc - ceil(50 items / 10)`` where ``frc`` is the first demand row that requests the operand
(os: 0 and 0; ws: ifmap ``R``, filter ``max(0, R - K)``; is: ifmap ``max(0, R - K)``, filter ``R``).

What is not emulated: Ramulator DRAM latency traces (``UseRamulatorTrace``), custom SRAM layouts /
bank conflicts (``IfmapCustomLayout``/``FilterCustomLayout``), sparsity, CALC mode's
``read_buffer_estimate_bw`` DRAM *counts* (CALC's cycles are emulated, its DRAM counts are not),
and the address offsets (they never change the result).

Measured accuracy (``tests/test_scalesim_compat.py``): all 67 USER rows of
``tests/data/reference/scalesim_cycles_visible.csv`` and all 81 USER cases of
``tests/data/scalesim_extra/scalesim_user_extra.csv`` (os/ws/is, 37 array shapes from 2x20 to
64x48, SRAMs 2-64 KB, bandwidths 1-20 set per operand, conv 1x1..7x7 with strides 1-3, GEMMs) are
reproduced *exactly*: stall cycles, "Total Cycles", "Total Cycles (incl. prefetch)", SRAM and DRAM
ifmap/filter/ofmap counts (worst relative stall error 0 %); so are "Total Cycles" and "Total Cycles
(incl. prefetch)" of all 83 CALC rows of the reference and the 6 CALC rows of the extra set.  ``exact`` is False only if the replay
hits a state where SCALE-Sim itself would loop forever or crash (not seen in practice).

Speed: the largest reference row (ResNet-18 FC, ws, 32x32, 64 KB, bw 4: 5.1 M cycles, 20 M DRAM
words) replays in ~25 ms; the slowest extra case (38 s in SCALE-Sim) in ~25 ms; ResNet-18 Conv1 ws
on 8x8 (1.8 M demand rows) in ~0.9 s; GEMM 1024^3 ws on 32x32 (1.1 M rows, 0.9 G DRAM words) in
~1.7 s.  The first call on a machine compiles the kernels of its dataflow (~4 s idle, once per
dataflow ~1 s more; cached on disk afterwards, see :mod:`.warmup`) and says so through the
``accelsim`` logger (the CLI prints it on stderr): ``accelsim warmup`` after installing does it
ahead of time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numba import literally, njit

from .._jit import notice_if_cold

if TYPE_CHECKING:  # pragma: no cover
    from ..hardware.systolic import SystolicArray
    from ..stats import TopologyRow

__all__ = [
    "ScaleSimLayer",
    "ScaleSimArray",
    "ScaleSimUserResult",
    "ScaleSimClosedForm",
    "ScaleSimCalcResult",
    "closed_form_counts",
    "simulate_user_mode",
    "simulate_calc_mode",
    "calc_prefetch_cycles_of_row",
    "timing_of_row",
]

_DATAFLOWS = {"os": 0, "ws": 1, "is": 2}


# ----------------------------------------------------------------------------------------------
# Public data classes
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScaleSimLayer:
    """A layer exactly as SCALE-Sim sees it (one row of a conv topology CSV).

    The ofmap size rounds up like SCALE-Sim: ``ceil((H - R + stride) / stride)``.  A GEMM
    ``M, N, K`` is ``ifmap_h=M, ifmap_w=K, filter_h=1, filter_w=K, channels=1, num_filters=N,
    stride=1`` (use :meth:`gemm`).
    """

    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filters: int
    stride: int

    @staticmethod
    def gemm(m: int, n: int, k: int) -> "ScaleSimLayer":
        """SCALE-Sim's GEMM mapping: C[MxN] = A[MxK] * B[KxN]."""
        return ScaleSimLayer(ifmap_h=m, ifmap_w=k, filter_h=1, filter_w=k, channels=1,
                             num_filters=n, stride=1)

    @property
    def ofmap_h(self) -> int:
        return int(math.ceil((self.ifmap_h - self.filter_h + self.stride) / self.stride))

    @property
    def ofmap_w(self) -> int:
        return int(math.ceil((self.ifmap_w - self.filter_w + self.stride) / self.stride))

    @property
    def ofmap_pixels(self) -> int:
        """SCALE-Sim's M (rows of the ifmap operand matrix)."""
        return self.ofmap_h * self.ofmap_w

    @property
    def window(self) -> int:
        """SCALE-Sim's K (conv window size = filter_h * filter_w * channels)."""
        return self.filter_h * self.filter_w * self.channels


@dataclass(frozen=True)
class ScaleSimArray:
    """Array + memory configuration of a SCALE-Sim USER-mode run.

    ``ifmap_bw_words_per_cycle`` / ``filter_bw_words_per_cycle`` are the ``[layout]
    IfmapSRAMBankBandwidth`` / ``FilterSRAMBankBandwidth`` of the .cfg (SCALE-Sim's USER-mode fill
    bandwidths); ``ofmap_bw_words_per_cycle`` is ``Bandwidth`` (first value).
    """

    rows: int
    cols: int
    dataflow: str  # 'os' | 'ws' | 'is'
    ifmap_sram_kb: float
    filter_sram_kb: float
    ofmap_sram_kb: float
    ifmap_bw_words_per_cycle: int
    filter_bw_words_per_cycle: int
    ofmap_bw_words_per_cycle: int
    word_bytes: int = 1

    @staticmethod
    def from_cfg(path) -> "ScaleSimArray":
        """Read a SCALE-Sim .cfg the way SCALE-Sim 3.0.0 does in USER mode.

        Fill bandwidths come from ``[layout] IfmapSRAMBankBandwidth`` / ``FilterSRAMBankBandwidth``
        (SCALE-Sim requires the ``[layout]`` section; if it is missing we fall back to 10, the
        ``scale_config`` constructor default); the ofmap drain bandwidth is the first value of
        ``Bandwidth``.
        """
        import configparser

        cp = configparser.ConfigParser()
        if not cp.read(path):
            raise FileNotFoundError(path)
        ap = cp["architecture_presets"]
        lay = cp["layout"] if cp.has_section("layout") else {}
        return ScaleSimArray(
            rows=int(ap["ArrayHeight"]), cols=int(ap["ArrayWidth"]),
            dataflow=ap["Dataflow"].strip().lower(),
            ifmap_sram_kb=int(ap["IfmapSramSzkB"]), filter_sram_kb=int(ap["FilterSramSzkB"]),
            ofmap_sram_kb=int(ap["OfmapSramSzkB"]),
            ifmap_bw_words_per_cycle=int(lay.get("IfmapSRAMBankBandwidth", 10)),
            filter_bw_words_per_cycle=int(lay.get("FilterSRAMBankBandwidth", 10)),
            ofmap_bw_words_per_cycle=int(str(ap.get("Bandwidth", "10")).split(",")[0]),
        )


@dataclass(frozen=True)
class ScaleSimUserResult:
    stall_free_cycles: int  # SCALE-Sim convention: demand rows - 1
    stall_cycles: int
    compute_cycles: int  # SCALE-Sim "Total Cycles" (= stall_free_cycles + stall_cycles in practice)
    total_cycles_incl_prefetch: int  # SCALE-Sim "Total Cycles (incl. prefetch)"
    dram_ifmap_reads: int
    dram_filter_reads: int
    dram_ofmap_writes: int
    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int
    exact: bool  # True when the emulation replays SCALE-Sim's algorithm exactly
    demand_rows: int = 0
    ifmap_prefetches: int = 0  # number of read_buffer.new_prefetch calls (after the start-up fill)
    filter_prefetches: int = 0


@dataclass(frozen=True)
class ScaleSimClosedForm:
    """Stall-free quantities (identical in CALC and USER mode)."""

    folds: int
    cycles_per_fold: int
    demand_rows: int
    stall_free_cycles: int  # demand_rows - 1 ("Total Cycles" of a CALC run)
    sram_ifmap_reads: int
    sram_filter_reads: int
    sram_ofmap_writes: int


# ----------------------------------------------------------------------------------------------
# Closed forms (compute/systolic_compute_{os,ws,is}.py)
# ----------------------------------------------------------------------------------------------
def closed_form_counts(layer: ScaleSimLayer, rows: int, cols: int, dataflow: str) -> ScaleSimClosedForm:
    """Fold count, demand rows and SRAM access counts of SCALE-Sim's compute model."""
    m, k, n = layer.ofmap_pixels, layer.window, layer.num_filters
    r, c = rows, cols
    df = dataflow.lower()
    if df == "os":
        rf, cf = -(-m // r), -(-n // c)
        per_fold = k + r + c - 2
        ifr, flr = cf * m * k, rf * k * n
        ofw = m * n + rf * cf * (r + c)
    elif df == "ws":
        rf, cf = -(-k // r), -(-n // c)
        per_fold = 2 * r + c + m - 2
        ifr, flr, ofw = cf * m * k, k * n, rf * m * n
    elif df == "is":
        rf, cf = -(-k // r), -(-m // c)
        per_fold = 2 * r + c + n - 2
        ifr, flr, ofw = m * k, cf * k * n, rf * m * n
    else:
        raise ValueError(f"unknown dataflow {dataflow!r}")
    folds = rf * cf
    demand_rows = folds * per_fold
    return ScaleSimClosedForm(folds=folds, cycles_per_fold=per_fold, demand_rows=demand_rows,
                              stall_free_cycles=demand_rows - 1, sram_ifmap_reads=ifr,
                              sram_filter_reads=flr, sram_ofmap_writes=ofw)


# ----------------------------------------------------------------------------------------------
# Address arithmetic (compute/operand_matrix.py, offsets dropped)
# ----------------------------------------------------------------------------------------------
@njit(cache=True)
def _ifmap_addr(m, k, ew, stride, h, w, cin, sc):
    """Address of ifmap operand element [ofmap pixel m, window index k]; -1 if off the edge."""
    orow = m // ew
    ocol = m - orow * ew
    irow = orow * stride
    icol = ocol * stride
    crow = k // sc
    kk = k - crow * sc
    ccol = kk // cin
    ch = kk - ccol * cin
    if crow + irow < h and ccol + icol < w:
        return ((crow + irow) * w + (ccol + icol)) * cin + ch
    return -1


@njit(cache=True)
def _pf_elem(kind, r, c, M, K, N, R, C, ew, stride, h, w, cin, sc):
    """Element [r, c] of a prefetch matrix (before roll-out).

    kind 0: os ifmap  (row_fold*K) x R     kind 1: os filter (col_fold*K) x C
    kind 2: ws ifmap  (row_fold*M) x R     kind 3: ws filter (col_fold*K) x C
    kind 4: is ifmap  (col_fold*K) x C     kind 5: is filter (row_fold*N) x R
    """
    if kind == 0:
        fr = r // K
        u = r - fr * K
        m = fr * R + c
        if m < M:
            return _ifmap_addr(m, u, ew, stride, h, w, cin, sc)
        return -1
    elif kind == 1 or kind == 3:  # os and ws filters: the same (col_fold*K) x C matrix
        fc = r // K
        k = r - fc * K
        n = fc * C + c
        if n < N:
            return n * K + k
        return -1
    elif kind == 2:
        fr = r // M
        u = r - fr * M
        k = fr * R + c
        if k < K:
            return _ifmap_addr(u, k, ew, stride, h, w, cin, sc)
        return -1
    elif kind == 4:
        fc = r // K
        k = r - fc * K
        m = fc * C + c
        if m < M:
            return _ifmap_addr(m, k, ew, stride, h, w, cin, sc)
        return -1
    else:
        fr = r // N
        n = r - fr * N
        k = fr * R + c
        if k < K:
            return n * K + k
        return -1


@njit(cache=True)
def _build_hashed_lines(kind, nrows, ncols, rollout, eps, space,
                        M, K, N, R, C, ew, stride, h, w, cin, sc):
    """Walk a prefetch matrix in SCALE-Sim's fetch order and index its hashed sets.

    Returns (ptr, lines, n_valid): for address a, lines[ptr[a]:ptr[a+1]] are the ids of the hashed
    sets (chunks of ``eps`` non-null elements, in fetch order) that contain a.
    """
    ptr = np.zeros(space + 1, dtype=np.int32)
    n_valid = 0
    # pass 1: count occurrences per address
    if rollout:
        for d in range(nrows + ncols - 1):
            rmax = min(d, nrows - 1)
            rmin = max(0, d - ncols + 1)
            for r in range(rmax, rmin - 1, -1):
                a = _pf_elem(kind, r, d - r, M, K, N, R, C, ew, stride, h, w, cin, sc)
                if a != -1:
                    ptr[a + 1] += 1
                    n_valid += 1
    else:
        for r in range(nrows):
            for c in range(ncols):
                a = _pf_elem(kind, r, c, M, K, N, R, C, ew, stride, h, w, cin, sc)
                if a != -1:
                    ptr[a + 1] += 1
                    n_valid += 1
    # exclusive prefix sum, shifted by one: ptr[a + 1] = start of a's run (used as write cursor)
    run = 0
    for i in range(space):
        cnt = ptr[i + 1]
        ptr[i + 1] = run
        run += cnt
    lines = np.empty(n_valid, dtype=np.int32)
    idx = 0
    # pass 2: record the set id of every occurrence
    if rollout:
        for d in range(nrows + ncols - 1):
            rmax = min(d, nrows - 1)
            rmin = max(0, d - ncols + 1)
            for r in range(rmax, rmin - 1, -1):
                a = _pf_elem(kind, r, d - r, M, K, N, R, C, ew, stride, h, w, cin, sc)
                if a != -1:
                    lines[ptr[a + 1]] = idx // eps
                    ptr[a + 1] += 1
                    idx += 1
    else:
        for r in range(nrows):
            for c in range(ncols):
                a = _pf_elem(kind, r, c, M, K, N, R, C, ew, stride, h, w, cin, sc)
                if a != -1:
                    lines[ptr[a + 1]] = idx // eps
                    ptr[a + 1] += 1
                    idx += 1
    # now ptr[a + 1] = end of a's run = start of a+1's run; ptr[0] = 0
    return ptr, lines, n_valid


# ----------------------------------------------------------------------------------------------
# The replay
# ----------------------------------------------------------------------------------------------
@njit(cache=True)
def _in_window(a, ptr, lines, s, n, A):
    for j in range(ptr[a], ptr[a + 1]):
        d = lines[j] - s
        if d < 0:
            d += n
        if d < A:
            return True
    return False


@njit(cache=True)
def _read(a, cycle, off, st, ptr, lines, n, A, P, L):
    """One read_buffer.service_reads element.  st = [window start, prefetch count, last prefetch
    cycle, error flag].  Returns the new offset."""
    guard = 0
    while not _in_window(a, ptr, lines, st[0], n, A):
        if P <= 0 or guard > n + 1:  # SCALE-Sim would loop forever here
            st[3] = 1
            return off
        guard += 1
        st[0] = (st[0] + P) % n
        st[1] += 1
        st[2] += L + 1
        ps = st[2] - (cycle + off)
        off += ps
        if ps > 0:
            off += ps
    return off


@njit(cache=True)
def _wb_drain(start, wb, pq_idx, pq_val, bw, Ld):
    """write_buffer.empty_drain_buf.  wb = [free, line_idx, n_lines, drain_ptr, num_access,
    pq_head, pq_tail, drain_end, max_end, error].  Returns the end cycle."""
    ds = wb[3]
    e = min(ds + Ld, wb[2])
    nl = e - ds
    if nl <= 0:  # SCALE-Sim would raise here
        wb[9] = 1
        return start
    last = e - 1
    valid_last = bw
    h = wb[5]
    while h < wb[6] and pq_idx[h] < e:
        if pq_idx[h] == last:
            valid_last = pq_val[h]
        h += 1
    wb[5] = h
    data = nl * bw - (bw - valid_last)
    wb[4] += data
    wb[0] += data
    wb[3] = e
    end = start + nl - 1
    if end > wb[8]:
        wb[8] = end
    return end


@njit(cache=True)
def _wb_flush(wb, pq_idx, pq_val):
    """append_to_trace_mat(force=True): close a partial line.  Returns the (maybe grown) queue."""
    if wb[1] != 0:
        t = wb[6]
        if t >= pq_idx.shape[0]:
            # compact / grow the partial-line queue
            h = wb[5]
            live = t - h
            cap = max(2 * live + 16, pq_idx.shape[0])
            ni = np.empty(cap, dtype=np.int64)
            nv = np.empty(cap, dtype=np.int64)
            for j in range(live):  # element loop: a slice copy compiles numba's shape-error path (~1.6 s)
                ni[j] = pq_idx[h + j]
                nv[j] = pq_val[h + j]
            pq_idx = ni
            pq_val = nv
            wb[5] = 0
            wb[6] = live
            t = live
        pq_idx[t] = wb[2]
        pq_val[t] = wb[1]
        wb[6] = t + 1
        wb[2] += 1
        wb[1] = 0
    return pq_idx, pq_val


@njit(cache=True)
def _write(cur, off, wb, pq, o_total, o_active, bw, Ld):
    """One write_buffer.service_writes element.  Returns (cur, off, pq_idx, pq_val)."""
    pq_idx, pq_val = pq
    # store_to_trace_mat_cache
    wb[1] += 1
    wb[0] -= 1
    if wb[1] == bw:
        wb[2] += 1
        wb[1] = 0
    if cur < wb[7]:
        if not wb[0] > 0:
            dd = wb[7] - cur
            if dd > 0:
                off += dd
            cur = wb[7]
    elif wb[0] < o_active:
        pq_idx, pq_val = _wb_flush(wb, pq_idx, pq_val)
        wb[7] = _wb_drain(cur, wb, pq_idx, pq_val, bw, Ld)
    return cur, off, pq_idx, pq_val


@njit(cache=True)
def _block_load(ifmap, k, first, C, K, limit, cycle, off, st, ptr, lines, n, A, P, L, ew, stride, h, w, cin, sc):
    """One row of a block loaded without skew (ws: the weight block, is: the ifmap block): reduction
    index ``k``, C columns of operand rows ``first + c`` below ``limit``.  Returns the new offset."""
    if k < K:
        for c in range(C):
            row = first + c
            if row < limit:
                a = _ifmap_addr(row, k, ew, stride, h, w, cin, sc) if ifmap else row * K + k
                if a != -1:
                    off = _read(a, cycle, off, st, ptr, lines, n, A, P, L)
    return off


@njit(cache=True)
def _replay(df, M, K, N, R, C, ew, stride, h, w, cin, sc,
            i_ptr, i_lines, i_n, i_A, i_P, i_L,
            f_ptr, f_lines, f_n, f_A, f_P, f_L,
            o_total, o_active, o_bw, o_Ld, reads):
    # one specialisation per dataflow: numba prunes the other dataflows' branches, so a first
    # call compiles only the code it runs (and the cache holds one entry per dataflow)
    literally(df)
    if df == 0:
        row_fold = (M + R - 1) // R
        col_fold = (N + C - 1) // C
        T = K
        fold_rows = T + R + C - 2
    elif df == 1:
        row_fold = (K + R - 1) // R
        col_fold = (N + C - 1) // C
        T = M
        fold_rows = 2 * R + C + T - 2
    else:
        row_fold = (K + R - 1) // R
        col_fold = (M + C - 1) // C
        T = N
        fold_rows = 2 * R + C + T - 2

    ist = np.zeros(4, dtype=np.int64)
    fst = np.zeros(4, dtype=np.int64)
    ist[2] = -1  # the start-up fill completes at cycle -1
    fst[2] = -1
    wb = np.zeros(10, dtype=np.int64)
    wb[0] = o_total
    pq_idx = np.empty(64, dtype=np.int64)
    pq_val = np.empty(64, dtype=np.int64)

    stall = 0
    g = 0
    last_cycle = 0
    last_off_o = 0
    for fc in range(col_fold):
        for fr in range(row_fold):
            for t in range(fold_rows):
                cycle = g + stall
                off_i = np.int64(1)  # np.int64: a literal would compile a second specialisation
                off_f = np.int64(1)
                cur = cycle
                off_o = np.int64(0)
                if df == 0:
                    if reads:
                        # ifmap: R columns, u = t - c in [0, T), pixel fr*R + c
                        c0 = max(0, t - T + 1)
                        c1 = min(R - 1, t)
                        for c in range(c0, c1 + 1):
                            m = fr * R + c
                            if m < M:
                                a = _ifmap_addr(m, t - c, ew, stride, h, w, cin, sc)
                                if a != -1:
                                    off_i = _read(a, cycle, off_i, ist, i_ptr, i_lines, i_n, i_A, i_P, i_L)
                        # filter: C columns, u = t - c, filter fc*C + c
                        c1 = min(C - 1, t)
                        for c in range(c0, c1 + 1):
                            n = fc * C + c
                            if n < N:
                                a = n * K + (t - c)
                                off_f = _read(a, cycle, off_f, fst, f_ptr, f_lines, f_n, f_A, f_P, f_L)
                    # ofmap: C columns, u' = t - c - (T-1) in [0, R), pixel fr*R + R-1-u'
                    o0 = max(0, t - T + 1 - R + 1)
                    o1 = min(C - 1, t - T + 1)
                    for c in range(o0, o1 + 1):
                        up = t - c - (T - 1)
                        m = fr * R + R - 1 - up
                        if m < M and fc * C + c < N:
                            cur, off_o, pq_idx, pq_val = _write(cur, off_o, wb, (pq_idx, pq_val),
                                                                o_total, o_active, o_bw, o_Ld)
                elif df == 1:
                    if reads:
                        # ifmap: R columns, prefix R rows, u = t - c - R in [0, T), window fr*R + c
                        c0 = max(0, t - R - T + 1)
                        c1 = min(R - 1, t - R)
                        for c in range(c0, c1 + 1):
                            k = fr * R + c
                            if k < K:
                                a = _ifmap_addr(t - c - R, k, ew, stride, h, w, cin, sc)
                                if a != -1:
                                    off_i = _read(a, cycle, off_i, ist, i_ptr, i_lines, i_n, i_A, i_P, i_L)
                        # filter: first R rows load the (row-flipped) weight block, no skew
                        if t < R:
                            off_f = _block_load(False, fr * R + R - 1 - t, fc * C, C, K, N, cycle, off_f, fst, f_ptr,
                                                f_lines, f_n, f_A, f_P, f_L, ew, stride, h, w, cin, sc)
                    # ofmap: prefix 2R-1, u = t - c - (2R-1) in [0, T)
                    o0 = max(0, t - (2 * R - 1) - T + 1)
                    o1 = min(C - 1, t - (2 * R - 1))
                    for c in range(o0, o1 + 1):
                        if fc * C + c < N:
                            cur, off_o, pq_idx, pq_val = _write(cur, off_o, wb, (pq_idx, pq_val),
                                                                o_total, o_active, o_bw, o_Ld)
                else:
                    if reads:
                        # ifmap: first R rows load the (row-flipped) ifmap block, C columns, no skew
                        if t < R:
                            off_i = _block_load(True, fr * R + R - 1 - t, fc * C, C, K, M, cycle, off_i, ist, i_ptr,
                                                i_lines, i_n, i_A, i_P, i_L, ew, stride, h, w, cin, sc)
                        # filter: R columns, prefix R rows, u = t - c - R in [0, T) (filter index)
                        c0 = max(0, t - R - T + 1)
                        c1 = min(R - 1, t - R)
                        for c in range(c0, c1 + 1):
                            k = fr * R + c
                            if k < K:
                                a = (t - c - R) * K + k
                                off_f = _read(a, cycle, off_f, fst, f_ptr, f_lines, f_n, f_A, f_P, f_L)
                    # ofmap: prefix 2R-1, pixel fc*C + c
                    o0 = max(0, t - (2 * R - 1) - T + 1)
                    o1 = min(C - 1, t - (2 * R - 1))
                    for c in range(o0, o1 + 1):
                        if fc * C + c < M:
                            cur, off_o, pq_idx, pq_val = _write(cur, off_o, wb, (pq_idx, pq_val),
                                                                o_total, o_active, o_bw, o_Ld)
                s = off_i - 1
                if off_f - 1 > s:
                    s = off_f - 1
                if off_o > s:
                    s = off_o
                last_cycle = cycle
                last_off_o = off_o
                stall += s
                g += 1

    # empty_all_buffers(last serviced ofmap cycle)
    total_cycles = last_cycle + last_off_o
    cyc = total_cycles
    pq_idx, pq_val = _wb_flush(wb, pq_idx, pq_val)
    if wb[2] > 0:
        while wb[3] < wb[2]:
            wb[7] = _wb_drain(cyc, wb, pq_idx, pq_val, o_bw, o_Ld)
            cyc = wb[7] + 1
    err = ist[3] + fst[3] + wb[9]
    return (g, stall, total_cycles, ist[1], fst[1], wb[4], wb[8], err)


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------
def _buffer_geometry(kb: float, word_bytes: int):
    total = int(math.floor(kb * 1024 / word_bytes))
    active = int(math.ceil(total * 0.5))
    return total, active, total - active


def _read_buffer_setup(kind, nrows, ncols, rollout, kb, word_bytes, bw, space, dims):
    total, active, pf_size = _buffer_geometry(kb, word_bytes)
    eps = int(math.ceil(total / 100))
    ptr, lines, n_valid = _build_hashed_lines(kind, nrows, ncols, rollout, eps, space, *dims)
    n_lines = n_valid // eps + 1
    max_a = int(math.ceil(active / eps))
    max_p = int(math.ceil(pf_size / eps))
    a_lines = min(max_a, n_lines)
    p_lines = min(max_p, n_lines - a_lines)
    L = int(math.ceil(pf_size / bw))
    fetch_rows = int(math.ceil(nrows * ncols / bw))
    init_lines = min(int(math.ceil(active / bw)), fetch_rows)
    return ptr, lines, n_lines, a_lines, p_lines, L, init_lines


def simulate_user_mode(layer: ScaleSimLayer, array: ScaleSimArray) -> ScaleSimUserResult:
    """Replay SCALE-Sim 3.0.0's USER-mode memory simulation of one layer (see module docstring)."""
    df = array.dataflow.lower()
    if df not in _DATAFLOWS:
        raise ValueError(f"unknown dataflow {array.dataflow!r}")
    for name in ("ifmap_bw_words_per_cycle", "filter_bw_words_per_cycle", "ofmap_bw_words_per_cycle"):
        if int(getattr(array, name)) < 1:
            raise ValueError(f"{name} must be >= 1")
    R, C = int(array.rows), int(array.cols)
    M, K, N = layer.ofmap_pixels, layer.window, layer.num_filters
    if min(R, C, M, K, N) < 1:
        raise ValueError("empty layer or array")
    ew = layer.ofmap_w
    stride = layer.stride
    h, w, cin = layer.ifmap_h, layer.ifmap_w, layer.channels
    sc = layer.filter_w * cin
    dims = (M, K, N, R, C, ew, stride, h, w, cin, sc)
    ifmap_space = h * w * cin
    filter_space = K * N
    wbytes = int(array.word_bytes)

    if df == "os":
        rf, cf = -(-M // R), -(-N // C)
        i_geo = (0, rf * K, R, True)
        f_geo = (1, cf * K, C, True)
    elif df == "ws":
        rf, cf = -(-K // R), -(-N // C)
        i_geo = (2, rf * M, R, True)
        f_geo = (3, cf * K, C, False)
    else:
        rf, cf = -(-K // R), -(-M // C)
        i_geo = (4, cf * K, C, False)
        f_geo = (5, rf * N, R, True)

    ibw, fbw, obw = (int(array.ifmap_bw_words_per_cycle), int(array.filter_bw_words_per_cycle),
                     int(array.ofmap_bw_words_per_cycle))
    i_ptr, i_lines, i_n, i_A, i_P, i_L, i_init = _read_buffer_setup(
        *i_geo, array.ifmap_sram_kb, wbytes, ibw, ifmap_space, dims)
    f_ptr, f_lines, f_n, f_A, f_P, f_L, f_init = _read_buffer_setup(
        *f_geo, array.filter_sram_kb, wbytes, fbw, filter_space, dims)
    o_total, o_active, o_drain = _buffer_geometry(array.ofmap_sram_kb, wbytes)
    o_Ld = int(math.ceil(o_drain / obw))

    notice_if_cold(_replay, "the SCALE-Sim USER-mode kernels", "~5 s")
    (rows, stall, total_cycles, n_if_pf, n_fl_pf, o_access, o_stop, err) = _replay(
        _DATAFLOWS[df], *dims,
        i_ptr, i_lines, i_n, i_A, i_P, i_L,
        f_ptr, f_lines, f_n, f_A, f_P, f_L,
        o_total, o_active, obw, o_Ld, True)

    cf_counts = closed_form_counts(layer, R, C, df)
    dram_if = i_init * ibw + int(n_if_pf) * i_L * ibw
    dram_fl = f_init * fbw + int(n_fl_pf) * f_L * fbw
    incl_prefetch = int(o_stop) + max(i_init, f_init)
    return ScaleSimUserResult(
        stall_free_cycles=int(rows) - 1,
        stall_cycles=int(stall),
        compute_cycles=int(total_cycles),
        total_cycles_incl_prefetch=int(incl_prefetch),
        dram_ifmap_reads=int(dram_if),
        dram_filter_reads=int(dram_fl),
        dram_ofmap_writes=int(o_access),
        sram_ifmap_reads=cf_counts.sram_ifmap_reads,
        sram_filter_reads=cf_counts.sram_filter_reads,
        sram_ofmap_writes=cf_counts.sram_ofmap_writes,
        exact=(int(err) == 0),
        demand_rows=int(rows),
        ifmap_prefetches=int(n_if_pf),
        filter_prefetches=int(n_fl_pf),
    )


def timing_of_row(row: "TopologyRow", hw: "SystolicArray") -> tuple[int, int, str, ScaleSimUserResult]:
    """(stall cycles, fill cycles, source, full emulation result) of one topology row on a
    ``scalesim_user`` systolic array.

    Fill is SCALE-Sim's "incl. prefetch" cycles beyond its "Total Cycles"; there is no drain. The
    result carries the emulation's DRAM counts (words), which the report uses.
    """
    ports = hw.scalesim_ports
    if ports is None:  # validated by SystolicArray
        raise ValueError("stall_model 'scalesim_user' needs scalesim_ports")
    arr = ScaleSimArray(
        hw.rows, hw.cols, hw.dataflow, hw.ifmap_sram.size_kb, hw.filter_sram.size_kb, hw.ofmap_sram.size_kb,
        ports.ifmap_words_per_cycle, ports.filter_words_per_cycle, ports.ofmap_words_per_cycle,
    )
    layer = ScaleSimLayer(row.ifmap_h, row.ifmap_w, row.filter_h, row.filter_w, row.channels, row.num_filters, row.stride)
    res = simulate_user_mode(layer, arr)
    extra = res.total_cycles_incl_prefetch - res.compute_cycles
    source = "SCALE-Sim 3.0.0 USER-mode emulation" + ("" if res.exact else " (approximate)")
    return res.stall_cycles, max(extra, 0), source, res


# ----------------------------------------------------------------------------------------------
# CALC mode ("estimate bandwidth"): no stalls; the start-up fill and final drain around them
# ----------------------------------------------------------------------------------------------
#: ``read_buffer_estimate_bw``'s fill rate in CALC mode (SCALE-Sim: "10 elems per cycle is arbitrary")
CALC_FILL_WORDS_PER_CYCLE = 10


@dataclass(frozen=True)
class ScaleSimCalcResult:
    """SCALE-Sim 3.0.0 CALC-mode cycles of one layer (see module docstring)."""

    total_cycles: int  # "Total Cycles": stall-free, demand rows - 1
    total_cycles_incl_prefetch: int  # "Total Cycles (incl. prefetch)"
    ifmap_dram_start_cycle: int
    filter_dram_start_cycle: int
    ofmap_dram_stop_cycle: int
    ifmap_unique_words: int
    filter_unique_words: int

    @property
    def prefetch_cycles(self) -> int:
        """Cycles of the start-up fill and final ofmap drain outside "Total Cycles"."""
        return self.total_cycles_incl_prefetch - self.total_cycles


def _touched(n_out: int, stride: int, k: int, size: int) -> int:
    """Input rows (or columns) some window of a ``k``-wide, ``stride``-strided filter reads."""
    hit = np.zeros(size, dtype=bool)
    for o in range(n_out):
        hit[o * stride:min(o * stride + k, size)] = True
    return int(hit.sum())


def _calc_read_start(unique: int, kb: float, word_bytes: int, first_request_row: int) -> int:
    """First DRAM request cycle of ``read_buffer_estimate_bw`` (active fraction 0.5, 100 sets)."""
    items = int(math.floor(kb * 1024 / word_bytes)) // 100
    if items < 1:
        raise ValueError(f"SRAM of {kb} KB holds fewer than 100 words: SCALE-Sim's CALC mode cannot run it")
    if unique >= 50 * items:  # the active half fills up while computing: prefetch ends 2 cycles before frc
        return first_request_row - int(math.ceil(50 * items / CALC_FILL_WORDS_PER_CYCLE))
    sets = -(-unique // items)  # complete_all_prefetches: everything fetched, ending at cycle -2
    return -int(math.ceil(sets * items / CALC_FILL_WORDS_PER_CYCLE))


def simulate_calc_mode(layer: ScaleSimLayer, rows: int, cols: int, dataflow: str, ifmap_sram_kb: float,
                       filter_sram_kb: float, ofmap_sram_kb: float, word_bytes: int = 1) -> ScaleSimCalcResult:
    """SCALE-Sim 3.0.0's CALC-mode "Total Cycles" and "Total Cycles (incl. prefetch)" of one layer."""
    df = dataflow.lower()
    if df not in _DATAFLOWS:
        raise ValueError(f"unknown dataflow {dataflow!r}")
    R, C = int(rows), int(cols)
    M, K, N = layer.ofmap_pixels, layer.window, layer.num_filters
    if min(R, C, M, K, N) < 1:
        raise ValueError("empty layer or array")
    dims = (M, K, N, R, C, layer.ofmap_w, layer.stride, layer.ifmap_h, layer.ifmap_w, layer.channels,
            layer.filter_w * layer.channels)
    frc = {"os": (0, 0), "ws": (R, max(0, R - K)), "is": (max(0, R - K), R)}[df]
    # reads always hit in CALC: replay the ofmap write buffer only (reads=False), no read buffers
    ptr, lines = np.zeros(2, dtype=np.int32), np.zeros(1, dtype=np.int32)
    no_buf = (ptr, lines, 1, 1, 0, 1)
    o_total, o_active, o_drain = _buffer_geometry(ofmap_sram_kb, word_bytes)
    o_Ld = int(math.ceil(o_drain / C))
    (_, _, total_cycles, _, _, _, o_stop, _) = _replay(
        _DATAFLOWS[df], *dims, *no_buf, *no_buf, o_total, o_active, C, o_Ld, False)
    u_if = (_touched(layer.ofmap_h, layer.stride, layer.filter_h, layer.ifmap_h)
            * _touched(layer.ofmap_w, layer.stride, layer.filter_w, layer.ifmap_w) * layer.channels)
    u_fl = K * N
    s_if = _calc_read_start(u_if, ifmap_sram_kb, word_bytes, frc[0])
    s_fl = _calc_read_start(u_fl, filter_sram_kb, word_bytes, frc[1])
    return ScaleSimCalcResult(
        total_cycles=int(total_cycles), total_cycles_incl_prefetch=int(o_stop) - min(s_if, s_fl),
        ifmap_dram_start_cycle=s_if, filter_dram_start_cycle=s_fl, ofmap_dram_stop_cycle=int(o_stop),
        ifmap_unique_words=u_if, filter_unique_words=u_fl,
    )


def calc_prefetch_cycles_of_row(row: "TopologyRow", hw: "SystolicArray") -> int:
    """SCALE-Sim CALC mode's start-up fill + final drain cycles (incl. prefetch minus Total Cycles)
    of one topology row on a systolic array."""
    layer = ScaleSimLayer(row.ifmap_h, row.ifmap_w, row.filter_h, row.filter_w, row.channels, row.num_filters, row.stride)
    res = simulate_calc_mode(layer, hw.rows, hw.cols, hw.dataflow, hw.ifmap_sram.size_kb, hw.filter_sram.size_kb,
                             hw.ofmap_sram.size_kb)
    return res.prefetch_cycles
