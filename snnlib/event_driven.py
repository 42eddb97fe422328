"""Event-driven path of :func:`snnlib.simulate.simulate`: compute from the spikes alone.

At the usual firing-rate scales only a few percent of the neurons spike in a step, so the
linear operation out of a spiking layer is computed from its spikes alone: a convolution as a
sparse "im2col" matrix (one row per output position, one entry per spike and kernel tap) times
the kernel, a dense layer as a sparse (examples x inputs) matrix times the kernel. When more
than SPARSE_THRESHOLD of a layer's neurons spike in a step, that step uses the dense operation.
The neurons are updated with the same arithmetic as NeuronLayer.step, except that the reset
is applied only where a neuron spiked (where nothing spiked it would subtract 0).
The first spiking layer with a constant input, reset "subtract" and max_spikes_per_step None
receives a constant drive d per step, so its cumulative count after t steps is
floor(v0 + t d): its spikes are enumerated at once (see _constant_drive_events); neurons whose
voltage comes within the accumulated rounding error of an integer are simulated step by step,
so the counts are those of step-by-step float arithmetic.

Results: the spike counts are those of the dense path except where a changed summation order
(the sparse sums, the synapse applied after the linear operation rather than before) moves a
voltage across an integer by rounding: in float64 this changes no spike count in the tests
(tests/test_simulate.py compares both paths on the book's convnet); in float32 a rare
neuron may spike a step earlier or later and outputs differ by float32 rounding.
"""
import numpy as np

#: Use the event-driven path where it applies (False: always the dense, step-by-step path).
ENABLED = True
#: Largest fraction of a layer's neurons spiking in a step for which the next linear operation
#: is computed from the spikes alone (above it, the dense operation is used for that step).
SPARSE_THRESHOLD = 0.015
#: The same for a dense layer (its sparse product costs ~ spikes x outputs: cheap).
DENSE_THRESHOLD = 0.3
#: Examples simulated together on the event-driven path.
CHUNK = 32


def segments(network):
    """The linear maps between spiking layers, or None when the event-driven path can't do them.

    Returns a list of (weighted stage index, spiking stage index or None) for each group of
    stages after the first spiking one: reshapes / identities without bias and exactly one
    dense or convolution stage, ending in a spiking stage or in the output.
    """
    from snnlib.network import Conv2DOp, DenseOp, IdentityOp, ReshapeOp

    stages = network.stages
    first = next((i for i, s in enumerate(stages) if s.spiking), None)
    if first is None or stages[-1].spiking:
        return None
    segments, weighted = [], None
    for i in range(first + 1, len(stages)):
        s = stages[i]
        if isinstance(s.op, (Conv2DOp, DenseOp)):
            if weighted is not None:
                return None
            weighted = i
        elif not (isinstance(s.op, (ReshapeOp, IdentityOp)) and s.bias is None and not s.spiking):
            return None
        if s.spiking or i == len(stages) - 1:
            if weighted is None:
                return None
            segments.append((weighted, i if s.spiking else None))
            weighted = None
    return segments


class _SparseLinear:
    """``W x`` for a sparse x given as (flat index in the batch, value) events."""

    def __init__(self, stage, in_size, dtype):
        from snnlib.network import Conv2DOp, same_padding

        self.stage, self.in_size = stage, in_size
        op = stage.op
        self.conv = isinstance(op, Conv2DOp)
        self.bias = None if stage.bias is None else stage.bias
        if self.conv:
            h, w, c = stage.input_shape
            (kh, kw, _, c_out), (sh, sw) = op.kernel.shape, op.strides
            oh, ow = stage.output_shape[:2]
            pt = pl = 0
            if op.padding == "same":
                pt, pl = same_padding(h, kh, sh)[0], same_padding(w, kw, sw)[0]
            # taps of every input position: output position (or -1) and kernel tap index
            ys, xs = np.arange(h), np.arange(w)
            outs, taps = [], []
            for ky in range(kh):
                for kx in range(kw):
                    oy, ry = np.divmod(ys + pt - ky, sh)
                    ox, rx = np.divmod(xs + pl - kx, sw)
                    okay = ((ry == 0) & (oy >= 0) & (oy < oh))[:, None] & \
                        ((rx == 0) & (ox >= 0) & (ox < ow))[None, :]
                    out = np.where(okay, oy[:, None] * ow + ox[None, :], -1)
                    if np.any(okay):
                        outs.append(out.ravel())
                        taps.append(ky * kw + kx)
            outs = np.stack(outs, axis=1)  # (h * w, n_taps)
            self.tap_out = outs
            self.tap_id = np.broadcast_to(np.array(taps), outs.shape)
            self.tap_ok = outs >= 0
            self.c_in, self.n_pos, self.c_out = c, oh * ow, c_out
            self.kernel = op.kernel.reshape(kh * kw * c, c_out)
            self.n_cols = kh * kw * c
        else:
            self.kernel = op.kernel
        self.out_size = int(np.prod(stage.output_shape))

    def __call__(self, flat, values, batch):
        """The linear output (no bias), (batch, out_size), of the events ``flat``, ``values``."""
        import scipy.sparse as sp

        example, j = np.divmod(flat, self.in_size)
        if not self.conv:
            m = sp.csr_matrix((values, j, np.searchsorted(example, np.arange(batch + 1))),
                              shape=(batch, self.in_size))
            return np.asarray(m @ self.kernel)
        pos, c = np.divmod(j, self.c_in)
        ok = self.tap_ok[pos]
        counts = ok.sum(axis=1)
        rows = (example[:, None] * self.n_pos + self.tap_out[pos])[ok]
        cols = (self.tap_id[pos] * self.c_in + c[:, None])[ok]
        m = sp.coo_matrix((np.repeat(values, counts), (rows, cols)),
                          shape=(batch * self.n_pos, self.n_cols))
        return np.asarray(m @ self.kernel).reshape(batch, -1)

    def dense(self, flat, values, batch):
        """The same through the dense operation (for steps with many spikes)."""
        x = np.zeros(batch * self.in_size, dtype=values.dtype)
        x[flat] = values
        x = x.reshape((batch,) + tuple(self.stage.input_shape))
        return self.stage.op(x).reshape(batch, -1)


class _SparseNeurons:
    """A spiking layer updated as NeuronLayer, resetting only the neurons that spiked.

    Needs voltages >= 0 (then ``floor(v)`` is 0 wherever ``v < 1``).
    """

    def __init__(self, layer):
        self.layer = layer
        self.v = layer.voltage.reshape(-1)
        self.counts = layer.counts.reshape(-1)
        self.drive = layer.drive.reshape(-1)

    def step(self, current, t):
        """Advance given the input current (flat); return the spikes as (flat index, count).

        ``current`` None: the same current as the previous step (its drive is kept).
        """
        layer, v, drive = self.layer, self.v, self.drive
        if current is not None:
            np.multiply(current, layer.scale, out=drive)
            np.maximum(drive, 0, out=drive)
            drive *= layer.dt
        v += drive
        flat = np.flatnonzero(v >= 1)
        vi = v[flat]
        n = np.floor(vi) if layer.max_spikes is None else np.ones_like(vi)
        v[flat] = vi - n if layer.reset == "subtract" else 0
        self.counts[flat] += n
        _record(layer, flat, n, t)
        return flat, n


def _record(layer, flat, n, t):
    if layer.spikes is not None:
        spikes = layer.spikes.reshape(layer.spikes.shape[0], layer.spikes.shape[1], -1)
        example, j = np.divmod(flat, spikes.shape[2])
        spikes[example, t, j] = n


def _constant_drive_events(layer, current, n_steps):
    """Spikes of a layer with a constant current, reset "subtract", any number per step.

    Returns (step, flat index, count) of every step's spikes, sorted by step. Step 0 is computed
    as in NeuronLayer.step; from the remainder r in [0, 1) after it, the k-th crossing is at
    step ceil((k - r) / d) in exact arithmetic. Step-by-step float arithmetic accumulates at most
    ~ steps (1 + d) eps of rounding: a neuron whose exact voltage comes closer than that to an
    integer (before or after a crossing, or at the end) is simulated step by step instead.
    """
    dtype = layer.voltage.dtype
    v = layer.voltage.reshape(-1)
    drive = np.multiply(current.reshape(-1), layer.scale).astype(dtype, copy=False)
    np.maximum(drive, 0, out=drive)
    drive *= layer.dt
    v += drive  # step 0, as NeuronLayer.step
    first = np.floor(v)
    v -= first
    f0 = np.flatnonzero(first)
    steps, flats, counts = [np.zeros(len(f0), np.int64)], [f0], [first[f0]]
    m = n_steps - 1
    if m > 0:
        eps = np.finfo(dtype).eps
        active = np.flatnonzero(drive > 0)
        r = v[active].astype(np.float64)
        d = drive[active].astype(np.float64)
        tol = 4.0 * (n_steps + 2) * (1.0 + d) * eps
        total = np.floor(r + m * d)
        bad = (total + 1) - (r + m * d) < tol
        k_count = total.astype(np.int64)
        k_count[bad] = 0
        if k_count.sum() > 2 * len(v) * n_steps:  # very high rates: step by step
            bad[:] = True
            k_count[:] = 0
        owner = np.repeat(np.arange(len(active)), k_count)
        k = np.arange(len(owner)) - np.repeat(np.cumsum(k_count) - k_count, k_count) + 1.0
        ro, do = r[owner], d[owner]
        s = np.ceil((k - ro) / do)
        after = ro + s * do - k
        before = k - (ro + (s - 1) * do)
        tol_o = tol[owner]
        wrong = (after < tol_o) | (before < tol_o) | (s < 1) | (s > m)
        bad[owner[wrong]] = True
        keep = ~bad[owner]
        owner, s = owner[keep], s[keep].astype(np.int64)
        if len(owner):
            # several crossings in one step (d > 1): one event with their count
            new = np.ones(len(owner), bool)
            new[1:] = (owner[1:] != owner[:-1]) | (s[1:] != s[:-1])
            starts = np.flatnonzero(new)
            steps.append(s[starts])
            flats.append(active[owner[starts]])
            counts.append(np.diff(np.append(starts, len(owner))).astype(dtype))
        slow = active[bad]
        if len(slow):
            vs, ds = v[slow].copy(), drive[slow]
            for step in range(1, n_steps):
                vs += ds
                n = np.floor(vs)
                vs -= n
                hit = np.flatnonzero(n)
                steps.append(np.full(len(hit), step, np.int64))
                flats.append(slow[hit])
                counts.append(n[hit])
    step = np.concatenate(steps)
    flat = np.concatenate(flats)
    count = np.concatenate(counts).astype(dtype, copy=False)
    # a stable sort of 16-bit keys is a radix sort in NumPy: linear in the number of events
    order = np.argsort(step.astype(np.uint16 if n_steps < 2 ** 16 else np.int64), kind="stable")
    flat, count = flat[order], count[order]
    counts = layer.counts.reshape(-1)
    counts += np.bincount(flat, weights=count, minlength=len(counts)).astype(dtype)
    bounds = np.concatenate([[0], np.cumsum(np.bincount(step, minlength=n_steps))])
    return flat, count, bounds


def run_chunk(network, stages, segments, x, neurons, current, *, n_steps, dtype,
                      synapse):
    """Simulate one chunk on the event-driven path (``current``: the first layer's input)."""
    batch = len(x)
    first = next(i for i, s in enumerate(network.stages) if s.spiking)
    layer0 = neurons[network.stages[first].name]
    closed = layer0.reset == "subtract" and layer0.max_spikes is None
    if closed:
        flat0, count0, bounds0 = _constant_drive_events(layer0, current, n_steps)
    else:
        current = current.reshape(-1)
        sparse0 = _SparseNeurons(layer0)
    links = []
    in_size = int(np.prod(network.stages[first].output_shape))
    for weighted, spiking in segments:
        linear = _SparseLinear(stages[weighted], in_size, dtype)
        layer = _SparseNeurons(neurons[network.stages[spiking].name]) if spiking else None
        bias = stages[weighted].bias
        bias = (np.zeros(1, dtype) if bias is None else bias).astype(dtype)
        bias = np.broadcast_to(bias, (batch,) + tuple(stages[weighted].output_shape))
        bias = np.ascontiguousarray(bias).reshape(batch, -1)
        filtered = np.zeros_like(bias) if synapse is not None else None
        links.append((linear, layer, bias, filtered))
        if spiking:
            in_size = int(np.prod(network.stages[spiking].output_shape))
    output = np.zeros((batch, n_steps, links[-1][0].out_size), dtype=dtype)
    size0 = batch * int(np.prod(network.stages[first].output_shape))
    for t in range(n_steps):
        if closed:
            part = slice(bounds0[t], bounds0[t + 1])
            flat, n = flat0[part], count0[part]
            _record(layer0, flat, n, t)
        else:
            flat, n = sparse0.step(current if t == 0 else None, t)
        out_scale, size, decay = layer0.out_scale, size0, layer0.decay
        for linear, layer, bias, filtered in links:
            values = np.multiply(n, out_scale, dtype=dtype)
            if len(flat) > (SPARSE_THRESHOLD if linear.conv else DENSE_THRESHOLD) * size:
                z = linear.dense(flat, values, batch)
            else:
                z = linear(flat, values, batch)
            if filtered is None:
                z += bias
                h = z
            else:
                h = filtered + bias
                filtered *= decay
                filtered += (1 - decay) * z
            if layer is None:
                output[:, t] = h
            else:
                flat, n = layer.step(h.reshape(-1), t)
                out_scale, size, decay = layer.layer.out_scale, h.size, layer.layer.decay
    counts = {name: layer.counts.astype(np.int64) for name, layer in neurons.items()}
    spikes = {name: layer.spikes for name, layer in neurons.items() if layer.spikes is not None}
    return output, counts, spikes
