"""Multi-layer, optionally bidirectional LSTM and GRU matching ``aten::lstm.input`` / ``aten::gru.input``.

These are pure functions over the flat parameter list that PyTorch passes to the ATen ops
(``nn.LSTM._flat_weights`` order): for each layer, the forward direction then the reverse one,
each as ``w_ih, w_hh[, b_ih, b_hh]``. Inference only: dropout and train are not arguments.
Inputs are (T, B, F), or (B, T, F) with ``batch_first``, or unbatched (T, F).
States are (num_layers * num_directions, B, H), or (num_layers * num_directions, H) unbatched.
"""

import mlx.core as mx


def _rnn_split_params(params, has_biases, num_layers, num_directions, op):
    """Group the flat ATen parameter list into one tuple (w_ih, w_hh, b_ih, b_hh) per layer/direction."""
    per = 4 if has_biases else 2
    if len(params) != num_layers * num_directions * per:
        raise NotImplementedError(
            f"{op}: expected {num_layers * num_directions * per} params "
            f"({per} per layer and direction), got {len(params)}; "
            "LSTM projections (proj_size > 0, weight_hr) are not supported"
        )
    groups = []
    for k in range(num_layers * num_directions):
        p = params[k * per:(k + 1) * per]
        groups.append((p[0], p[1], p[2], p[3]) if has_biases else (p[0], p[1], None, None))
    return groups


def _rnn_prepare_input(input, batch_first):
    """Return (time-major (T, B, F) input, unbatched flag)."""
    if input.ndim == 2:
        return mx.expand_dims(input, 1), True
    if batch_first:
        return mx.swapaxes(input, 0, 1), False
    return input, False


def _rnn_finish_output(out, unbatched, batch_first):
    """Undo :func:`_rnn_prepare_input` on a (T, B, D*H) output."""
    if unbatched:
        return out[:, 0]
    if batch_first:
        return mx.swapaxes(out, 0, 1)
    return out


def _rnn_time_steps(length, reverse):
    """Time indices in processing order."""
    return range(length - 1, -1, -1) if reverse else range(length)


@mx.compile
def _lstm_cell(xp_t, h, c, w_hh_t):
    """One LSTM step; xp_t = x_t W_ih^T + b_ih + b_hh. Compiled: fuses the elementwise gate math."""
    i, f, g, o = mx.split(mx.addmm(xp_t, h, w_hh_t), 4, axis=-1)
    c = mx.sigmoid(f) * c + mx.sigmoid(i) * mx.tanh(g)
    return mx.sigmoid(o) * mx.tanh(c), c


def _lstm_direction(xp, h, c, w_hh, reverse):
    """Run one LSTM direction over precomputed input projections xp (T, B, 4H)."""
    w_hh_t = w_hh.T
    outs = [None] * xp.shape[0]
    for t in _rnn_time_steps(xp.shape[0], reverse):
        h, c = _lstm_cell(xp[t], h, c, w_hh_t)
        outs[t] = h
    return mx.stack(outs), h, c


def lstm(input, hx, params, has_biases, num_layers, bidirectional, batch_first):
    """``aten::lstm.input`` for inference; gate order (i, f, g, o).

    ``hx`` is ``[h0, c0]`` or an empty list (zero initial states).
    Returns ``(output, h_n, c_n)`` with PyTorch's shapes; output is (T, B, D*H) (or batch-first/unbatched).
    """
    num_directions = 2 if bidirectional else 1
    groups = _rnn_split_params(params, has_biases, num_layers, num_directions, "lstm")
    hidden_size = groups[0][1].shape[1]
    if groups[0][1].shape[0] != 4 * hidden_size:
        raise NotImplementedError("lstm: weight_hh is not (4H, H); projections (proj_size) are not supported")
    x, unbatched = _rnn_prepare_input(input, batch_first)
    if len(hx) == 0:
        zeros = mx.zeros((num_layers * num_directions, x.shape[1], hidden_size), dtype=x.dtype)
        h0, c0 = zeros, zeros
    else:
        h0, c0 = hx
        if unbatched:
            h0, c0 = mx.expand_dims(h0, 1), mx.expand_dims(c0, 1)
    h_n, c_n = [], []
    for layer in range(num_layers):
        outs = []
        for d in range(num_directions):
            k = layer * num_directions + d
            w_ih, w_hh, b_ih, b_hh = groups[k]
            xp = mx.addmm(b_ih + b_hh, x, w_ih.T) if has_biases else x @ w_ih.T
            out, h, c = _lstm_direction(xp, h0[k], c0[k], w_hh, reverse=d == 1)
            outs.append(out)
            h_n.append(h)
            c_n.append(c)
        x = outs[0] if num_directions == 1 else mx.concatenate(outs, axis=-1)
    h_n, c_n = mx.stack(h_n), mx.stack(c_n)
    if unbatched:
        h_n, c_n = h_n[:, 0], c_n[:, 0]
    return _rnn_finish_output(x, unbatched, batch_first), h_n, c_n


@mx.compile
def _gru_cell(xp_t, h, w_hh_t, b_hh):
    """One GRU step; xp_t = x_t W_ih^T + b_ih. Compiled: fuses the elementwise gate math."""
    hidden_size = h.shape[-1]
    gh = h @ w_hh_t if b_hh is None else mx.addmm(b_hh, h, w_hh_t)
    rz = mx.sigmoid(xp_t[..., : 2 * hidden_size] + gh[..., : 2 * hidden_size])
    r, z = rz[..., :hidden_size], rz[..., hidden_size:]
    n = mx.tanh(xp_t[..., 2 * hidden_size:] + r * gh[..., 2 * hidden_size:])
    return n + z * (h - n)  # == (1 - z) * n + z * h, in the form ATen's GRU cell uses


def _gru_direction(xp, h, w_hh, b_hh, reverse):
    """Run one GRU direction over precomputed input projections xp (T, B, 3H)."""
    w_hh_t = w_hh.T
    outs = [None] * xp.shape[0]
    for t in _rnn_time_steps(xp.shape[0], reverse):
        h = _gru_cell(xp[t], h, w_hh_t, b_hh)
        outs[t] = h
    return mx.stack(outs), h


def gru(input, hx, params, has_biases, num_layers, bidirectional, batch_first):
    """``aten::gru.input`` for inference; gate order (r, z, n),
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.

    ``hx`` is the initial state (num_layers * num_directions, B, H) or None (zeros).
    Returns ``(output, h_n)`` with PyTorch's shapes.
    """
    num_directions = 2 if bidirectional else 1
    groups = _rnn_split_params(params, has_biases, num_layers, num_directions, "gru")
    hidden_size = groups[0][1].shape[1]
    x, unbatched = _rnn_prepare_input(input, batch_first)
    if hx is None:
        hx = mx.zeros((num_layers * num_directions, x.shape[1], hidden_size), dtype=x.dtype)
    elif unbatched:
        hx = mx.expand_dims(hx, 1)
    h_n = []
    for layer in range(num_layers):
        outs = []
        for d in range(num_directions):
            k = layer * num_directions + d
            w_ih, w_hh, b_ih, b_hh = groups[k]
            xp = mx.addmm(b_ih, x, w_ih.T) if has_biases else x @ w_ih.T
            out, h = _gru_direction(xp, hx[k], w_hh, b_hh, reverse=d == 1)
            outs.append(out)
            h_n.append(h)
        x = outs[0] if num_directions == 1 else mx.concatenate(outs, axis=-1)
    h_n = mx.stack(h_n)
    if unbatched:
        h_n = h_n[:, 0]
    return _rnn_finish_output(x, unbatched, batch_first), h_n
