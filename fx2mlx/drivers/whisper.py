# runtime: audio
# extends: seq2seq
"""A compiled Whisper (recipe speech-to-text): `w = load(OUT)`;
`w.transcribe("audio.wav", language="en", task="transcribe", return_timestamps=False, num_beams=1)` -> text
(and segments with times), or `w.generate(input_features, language=..., ...)` -> token rows equal to Hugging
Face `WhisperForConditionalGeneration.generate(input_features, ...)`.

Whisper's generation (transformers' `WhisperGenerationMixin.generate`), on the seq2seq driver's greedy and beam
search: decoder prompt <|startoftranscript|> + language (given, or detected from the first window) + task +
<|notimestamps|> (unless timestamps are asked for); the logits processors in HF's order (begin-suppress at the
first generated position, suppress_tokens, the timestamp rules: timestamps in pairs, never decreasing, the
first one at most max_initial_timestamp_index, a timestamp when their total probability beats every text
token); and HF's window loop: the features are cut into windows of 2 x max_source_positions frames (30 s),
each decoded, split into segments at pairs of timestamp tokens, and the next window starts at the last
complete segment's end (or after the whole window). The result is every window's tokens, end of text
removed, concatenated, right-padded with pad_token_id. Settings come from generation_config.json (recorded in
manifest.json); keyword arguments override them. Sampling, temperature fallback, no-speech detection and
conditioning on previous windows are refused (not implemented)."""
import math

import mlx.core as mx

try:
    Seq2Seq  # noqa: B018 - vendored: the seq2seq driver precedes this text in OUT/program.py
except NameError:  # imported from the fx2mlx package (tests)
    from fx2mlx.drivers.seq2seq import Seq2Seq, _mask
    from fx2mlx.runtime.audio import load_audio, log_mel

TIME_PRECISION = 0.02  # seconds per timestamp token
REFUSED = {"condition_on_prev_tokens": (None, False), "compression_ratio_threshold": (None,),
           "logprob_threshold": (None,), "no_speech_threshold": (None,)}


class Whisper(Seq2Seq):
    def __init__(self, folder, compile=True):
        super().__init__(folder, compile=compile)
        self.w = self.info["whisper"]
        self.audio = self.manifest["audio"]

    # -- settings ----------------------------------------------------------------------------------
    def whisper_settings(self, language=None, task=None, return_timestamps=None, is_multilingual=None, **kwargs):
        w = dict(self.w)
        for k in REFUSED:
            if k in kwargs:
                w[k] = kwargs.pop(k)
        temperature = kwargs.pop("temperature", None)
        if temperature not in (None, 0.0) or kwargs.get("do_sample"):
            raise ValueError("sampling (temperature > 0, temperature fallback) is not implemented by this driver: "
                             "greedy and beam search only")
        for k, ok in REFUSED.items():
            if w.get(k) not in ok:
                raise ValueError(f"{k}={w[k]!r} is not implemented by this driver")
        max_new = kwargs.get("max_new_tokens")
        s = self.settings(**kwargs)
        s["max_new_tokens"] = max_new if max_new is not None else s.get("max_new_tokens")
        s["max_length"] = kwargs.get("max_length") or w.get("max_length") or s["max_length"]
        if return_timestamps is None:
            return_timestamps = bool(w.get("return_timestamps"))
        if is_multilingual is not None:
            w["is_multilingual"] = is_multilingual
        if w.get("is_multilingual") is False and (task is not None or language is not None):
            raise ValueError("this is an English-only model: language and task do not apply")
        s.update(language=language if language is not None else w.get("language"),
                 task=task if task is not None else w.get("task"), return_timestamps=bool(return_timestamps),
                 timestamp_begin=w["no_timestamps_token_id"] + 1, w=w)
        return s

    def language_id(self, language):
        lang_to_id = self.w.get("lang_to_id") or {}
        if not lang_to_id:
            raise ValueError("the model's generation config has no lang_to_id: language does not apply")
        code = language.lower()
        token = code if code in lang_to_id else f"<|{code}|>"
        if token not in lang_to_id:
            codes = ", ".join(t.strip("<|>") for t in sorted(lang_to_id))
            raise ValueError(f"language {language!r} is not one of the model's languages ({codes})")
        return lang_to_id[token]

    def init_tokens(self, s, detect=None):
        """The decoder prompt (HF `_retrieve_init_tokens`). detect(): the detected language id, if needed."""
        w, task, language = s["w"], s["task"], s["language"]
        init = [s["start"]]
        if task is None and language is None:
            forced = w.get("forced_decoder_ids")
            if forced and forced[0][0] == 1:
                i = 1
                while forced and forced[0][0] == i:
                    init.append(forced[0][1])
                    forced, i = forced[1:], i + 1
                if forced:
                    raise ValueError(f"forced_decoder_ids {w['forced_decoder_ids']} do not follow Whisper's prompt")
        undefined = len(init) <= 1 or init[1] is None
        lang = None
        if language is not None:
            lang = self.language_id(language)
        elif w.get("lang_to_id") and undefined:
            lang = detect()
        if lang is not None:
            if len(init) > 1:
                init[1] = lang
            else:
                init.append(lang)
        tasks = w.get("task_to_id") or {}
        if task is not None:
            if task not in ("transcribe", "translate") or task not in tasks:
                raise ValueError(f"task must be one of {', '.join(tasks) or 'transcribe, translate'}, got {task!r}")
            init.append(tasks[task])
        elif language is not None and tasks and not any(t in init for t in tasks.values()):
            init.append(tasks["transcribe"])
        nt = w["no_timestamps_token_id"]
        if not s["return_timestamps"] and init[-1] != nt:
            init.append(nt)
        elif s["return_timestamps"] and init[-1] == nt:
            init = init[:-1]
        return [t for t in init if t is not None]

    # -- logits processors: begin-suppress, suppress, timestamps (HF's order) -----------------------
    def process(self, seqs, scores, s):
        n, vocab = scores.shape
        cur, begin = len(seqs[0]), s["begin_index"]
        if s["begin_suppress_tokens"] and cur == begin:
            scores = mx.where(_mask(n, vocab, [set(s["begin_suppress_tokens"])] * n), -math.inf, scores)
        if s["suppress_tokens"]:
            scores = mx.where(_mask(n, vocab, [set(s["suppress_tokens"])] * n), -math.inf, scores)
        if s["return_timestamps"]:
            scores = self.timestamp_rules(seqs, scores, s)
        return scores

    def timestamp_rules(self, seqs, scores, s):
        """transformers' WhisperTimeStampLogitsProcessor."""
        n, vocab = scores.shape
        tb, begin = s["timestamp_begin"], s["begin_index"]
        eos = s["eos"][0] if s["eos"] else s["bos_token_id"]
        v = mx.arange(vocab)[None, :]
        ban = v == s["w"]["no_timestamps_token_id"]
        lo, hi, ts_lo, ts_hi = [], [], [], []  # per row: ban [lo, hi) and timestamps [ts_lo, ts_hi)
        for seq in seqs:
            seq = seq[begin:]
            last = len(seq) >= 1 and seq[-1] >= tb
            penultimate = len(seq) < 2 or seq[-2] >= tb
            a, b = 0, 0
            if last:
                a, b = (tb, vocab) if penultimate else (0, eos)
            lo.append(a)
            hi.append(b)
            stamps = [t for t in seq if t >= tb]
            t_last = tb
            if stamps:
                t_last = stamps[-1] if (last and not penultimate) else stamps[-1] + 1
            ts_lo.append(tb)
            ts_hi.append(t_last)
        col = lambda x: mx.array(x)[:, None]  # noqa: E731
        ban = ban | ((v >= col(lo)) & (v < col(hi))) | ((v >= col(ts_lo)) & (v < col(ts_hi)))
        if len(seqs[0]) == begin:
            ban = ban | (v < tb)
            mi = s["w"].get("max_initial_timestamp_index")
            if mi is not None:
                ban = ban | (v > tb + mi)
        scores = mx.where(ban, -math.inf, scores)
        logp = scores - mx.logsumexp(scores, axis=-1, keepdims=True)
        ts_lp = mx.logsumexp(logp[:, tb:], axis=-1)
        text_max = mx.max(logp[:, :tb], axis=-1)
        return mx.where((ts_lp > text_max)[:, None] & (v < tb), -math.inf, scores)

    # -- encoding ----------------------------------------------------------------------------------
    def encode_features(self, feats, repeat=1):
        hidden = self.graphs["encoder"](feats)
        keys, values = self.graphs["cross_kv"](hidden)
        if repeat > 1:
            keys = [mx.repeat(k, repeat, axis=0) for k in keys]
            values = [mx.repeat(v, repeat, axis=0) for v in values]
        return list(keys), list(values)

    def detect_language(self, feats):
        """Language ids of the rows of one window (HF `detect_language`): one decoder step from
        <|startoftranscript|>, the most likely language token."""
        feats = mx.array(feats).astype(mx.float32)
        window = self.w["input_stride"] * self.w["max_source_positions"]
        if feats.shape[-1] != window:
            feats = _window(feats, range(feats.shape[0]), [0] * feats.shape[0],
                            [min(window, feats.shape[-1])] * feats.shape[0], window)
        ck, cv = self.encode_features(feats)
        keys, values = self.empty_cache(feats.shape[0])
        state = {"keys": keys, "values": values, "ck": ck, "cv": cv, "mask": None}
        logits = self.step([self.settings()["start"]] * feats.shape[0], state)
        langs = sorted(self.w["lang_to_id"].values())
        allowed = _mask(logits.shape[0], logits.shape[1], [set(langs)] * logits.shape[0])
        return mx.argmax(mx.where(allowed, logits, -math.inf), axis=-1).tolist()

    # -- generation --------------------------------------------------------------------------------
    def generate(self, input_features, language=None, task=None, return_timestamps=None, return_segments=False,
                 **kwargs):
        """input_features (B, mel bins, frames) -> token rows as HF `generate(input_features, ...)` returns them
        (prompt not included, end of text removed, right-padded). Longer than one window: long form (HF's
        sequential windows; timestamps are then always predicted). return_segments: also the segments
        ({"start", "end" in seconds, "tokens"}) per row."""
        feats = mx.array(input_features).astype(mx.float32)
        if feats.ndim == 2:
            feats = feats[None]
        b, mels, total = feats.shape
        w = self.w
        if mels != w["num_mel_bins"]:
            raise ValueError(f"input_features have {mels} mel bins, the model takes {w['num_mel_bins']}")
        window = w["input_stride"] * w["max_source_positions"]
        if return_timestamps is None:
            return_timestamps = w.get("return_timestamps")
        if total > window:
            if return_timestamps is False:
                raise ValueError("more than one window of features (long form) needs timestamps: "
                                 "return_timestamps=False does not apply")
            return_timestamps = True
        s = self.whisper_settings(language, task, return_timestamps, **kwargs)
        if s["num_return_sequences"] != 1:
            raise ValueError("num_return_sequences > 1 is not implemented for Whisper")
        first = _window(feats, range(b), [0] * b, [min(total, window)] * b, window)
        init = [self.init_tokens(s, lambda: None) for _ in range(b)] if not _needs_detection(s) else None
        if init is None:
            langs = self.detect_language(first)
            init = [self.init_tokens(s, lambda i=i: langs[i]) for i in range(b)]
        seek, segments = [0] * b, [[] for _ in range(b)]
        max_length = s["max_length"]
        while any(seek[i] < total for i in range(b)):
            active = [i for i in range(b) if seek[i] < total]
            counts = [min(total - seek[i], window) for i in active]
            segment = _window(feats, active, [seek[i] for i in active], counts, window)
            prompt = [init[i] for i in active]
            plen = len(prompt[0])
            ws = dict(s, begin_index=plen)
            if s["max_new_tokens"] is not None:  # HF _set_max_new_tokens_and_length
                if s["max_new_tokens"] + plen > w["max_target_positions"]:
                    raise ValueError(f"max_new_tokens {s['max_new_tokens']} + the decoder prompt ({plen}) exceed the "
                                     f"model's max_target_positions {w['max_target_positions']}")
                ws["max_length"] = plen + s["max_new_tokens"]
            else:
                max_length = min(max_length + min(w["max_target_positions"] // 2 - 1, plen),
                                 w["max_target_positions"])
                ws["max_length"] = max_length
            if ws["num_beams"] > 1:
                ck, cv = self.encode_features(segment, ws["num_beams"])
                rows = self.beam_from(ck, cv, None, prompt, ws)
            else:
                ck, cv = self.encode_features(segment)
                rows = self.greedy_from(ck, cv, None, prompt, ws)
            for j, i in enumerate(active):
                seq = _strip(rows[j][plen:], ws["pad_token_id"], ws["eos"])
                found, offset = _segments(seq, seek[i], counts[j], s["timestamp_begin"], w["input_stride"],
                                          self.audio["hop_length"] / self.audio["sampling_rate"])
                segments[i] += found
                seek[i] += offset
        pad = s["pad_token_id"]
        out = [[t for seg in rows for t in seg["tokens"]] for rows in segments]
        n = max((len(r) for r in out), default=0)
        out = [r + [pad] * (n - len(r)) for r in out]
        return (out, segments) if return_segments else out

    # -- audio and text ----------------------------------------------------------------------------
    def features(self, audio, sampling_rate=None, long_form=True):
        """Audio (a path, or samples with their rate) -> log-mel features (1, mel bins, frames) in MLX:
        padded to one window (30 s), or, if longer and long_form, all of it (HF's `truncation=False`)."""
        a = self.audio
        if isinstance(audio, (str, bytes)) or hasattr(audio, "__fspath__"):
            samples = load_audio(str(audio), a["sampling_rate"])
        else:
            if sampling_rate is not None and sampling_rate != a["sampling_rate"]:
                raise ValueError(f"pass audio at {a['sampling_rate']} Hz (got {sampling_rate}); or a file path")
            samples = mx.array(audio).astype(mx.float32)
        window = a["sampling_rate"] * a["chunk_length"]
        n = max(window, samples.shape[0]) if long_form else window
        return log_mel(samples, a["feature_size"], n_fft=a["n_fft"], hop=a["hop_length"], pad_to=n,
                       sampling_rate=a["sampling_rate"])[None]

    def decode(self, tokens, with_timestamps=False):
        """Text of token ids: text tokens only (those below <|endoftext|>), as the HF tokenizer's
        decode(skip_special_tokens=True)."""
        info = self.manifest.get("tokenizer") or {}
        if "error" in info or not info:
            raise ValueError(f"{self.folder}: no tokenizer: {info.get('error', 'none was compiled in')}")
        if self._text is None:
            from tokenizers import Tokenizer

            self._text = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        eot = info["eot"]
        return self._text.decode([t for t in tokens if t < eot], skip_special_tokens=True)

    def transcribe(self, audio, language=None, task=None, timestamps=False, num_beams=1, max_new_tokens=None,
                   sampling_rate=None):
        """Audio (path or 16 kHz samples) -> {"text", "segments": [{"start", "end", "text"}], "tokens"}."""
        feats = self.features(audio, sampling_rate)
        kw = {"num_beams": num_beams}
        if max_new_tokens is not None:
            kw["max_new_tokens"] = max_new_tokens
        long_form = feats.shape[-1] > self.w["input_stride"] * self.w["max_source_positions"]
        rows, segs = self.generate(feats, language=language, task=task, return_timestamps=timestamps or long_form,
                                   return_segments=True, **kw)
        pad = self.settings()["pad_token_id"]
        tokens = _unpad(rows[0], pad)
        segments = [{"start": round(g["start"], 2), "end": round(g["end"], 2), "text": self.decode(g["tokens"])}
                    for g in segs[0]]
        return {"text": self.decode(tokens), "segments": segments, "tokens": tokens}


def _needs_detection(s):
    if s["language"] is not None or not s["w"].get("lang_to_id"):
        return False
    forced = s["w"].get("forced_decoder_ids") if s["task"] is None else None
    return not (forced and forced[0][0] == 1 and forced[0][1] is not None)


def _window(feats, rows_, starts, counts, window):
    """Windows of `window` frames of the rows `rows_`, from their start frames (zero-padded after `count` frames)."""
    rows = []
    for i, a, c in zip(rows_, starts, counts):
        x = feats[i:i + 1, :, a:a + c]
        if c < window:
            x = mx.pad(x, [(0, 0), (0, 0), (0, window - c)])
        rows.append(x)
    return mx.concatenate(rows, axis=0)


def _strip(seq, pad, eos):
    """HF generate_with_fallback: trailing padding removed (the end of text kept if it is the pad), then the end of text."""
    seq = list(seq)
    if seq and seq[-1] == pad:
        n = seq.count(pad) - (1 if pad in eos else 0)
        if n:
            seq = seq[:-n]
    if seq and seq[-1] in eos:
        seq = seq[:-1]
    return seq


def _segments(seq, seek, frames, tb, stride, frame_seconds):
    """HF `_retrieve_segment`: the segments of one window's tokens and how far to move (in frames)."""
    offset_s = seek * TIME_PRECISION / stride
    is_ts = [t >= tb for t in seq]
    single_ending = is_ts[-2:] == [False, True]
    cuts = [i + 1 for i in range(len(is_ts) - 1) if is_ts[i] and is_ts[i + 1]]
    if cuts:
        if single_ending:
            cuts.append(len(seq))
        else:
            cuts[-1] += 1
        segments, last = [], 0
        for k, c in enumerate(cuts):
            part = seq[last:c]
            end_i = -1 if (k != len(cuts) - 1 or single_ending) else -2
            segments.append({"start": offset_s + (part[0] - tb) * TIME_PRECISION,
                             "end": offset_s + (part[end_i] - tb) * TIME_PRECISION, "tokens": part})
            last = c
        move = frames if single_ending else (seq[last - 2] - tb) * stride
        return segments, move
    stamps = [i for i, x in enumerate(is_ts) if x]
    last_pos = int(frames * frame_seconds / TIME_PRECISION)
    if stamps and seq[stamps[-1]] != tb:
        last_pos = seq[stamps[-1]] - tb
    return [{"start": offset_s, "end": offset_s + last_pos * TIME_PRECISION, "tokens": seq}], frames


def _unpad(row, pad):
    while row and row[-1] == pad:
        row = row[:-1]
    return row


def load(path=None, compile=True):
    from pathlib import Path

    return Whisper(Path(path) if path is not None else Path(__file__).resolve().parent, compile=compile)
