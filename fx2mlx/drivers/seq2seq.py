# runtime: program_files
"""A compiled encoder-decoder text model (translation): `t = load(OUT)`;
`t.generate([[5, 6, 2], [7, 2]], num_beams=4, max_new_tokens=40)` -> one list of token ids per row,
equal to the rows of Hugging Face `generate` (decoder start token first, pad after the end).

Graphs: encoder(input_ids, attention_mask) -> hidden; cross_kv(hidden) -> ([K], [V]) per decoder layer,
once per sentence; decoder_step(ids (N, 1), encoder mask, self K..., self V..., cross K..., cross V...)
-> (logits (N, V), [self K], [self V]) with the self-attention cache growing by one position a step.
Generation follows transformers' `_sample` (greedy) and `_beam_search`: log-softmax, logits processors
(repetition penalty, no-repeat n-grams, bad words, min length, forced BOS/EOS, suppressed tokens) in HF's
order, top-k over beams x vocab with K = max(2, 1 + #eos) * beams, length penalty, early stopping and
HF's heuristic for when the running beams can no longer improve. Settings come from the model's
generation config (recorded in manifest.json) and keyword arguments override them."""
import json
import math
import struct
from pathlib import Path

import mlx.core as mx

SETTINGS = ("decoder_start_token_id", "bos_token_id", "eos_token_id", "pad_token_id", "forced_bos_token_id",
            "forced_eos_token_id", "max_length", "max_new_tokens", "min_length", "min_new_tokens", "num_beams",
            "length_penalty", "early_stopping", "no_repeat_ngram_size", "repetition_penalty", "bad_words_ids",
            "suppress_tokens", "begin_suppress_tokens", "num_return_sequences", "do_sample",
            "encoder_repetition_penalty", "encoder_no_repeat_ngram_size", "sequence_bias")
DEFAULTS = {"max_length": 20, "min_length": 0, "num_beams": 1, "length_penalty": 1.0, "early_stopping": False,
            "num_return_sequences": 1, "do_sample": False}
NOT_IMPLEMENTED = {"do_sample": (False, None), "encoder_repetition_penalty": (None, 1.0),
                   "encoder_no_repeat_ngram_size": (None, 0), "sequence_bias": (None,)}


def f32(x):
    """x rounded to float32 (HF keeps beam scores in float32 tensors)."""
    return struct.unpack("f", struct.pack("f", x))[0] if math.isfinite(x) else x


class Seq2Seq:
    def __init__(self, folder, compile=True):
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        self.graphs = {}
        for name, g in self.manifest["graphs"].items():
            gdir = self.folder / g["dir"]
            # the decoder step sees a new past length at every call: mx.compile would trace it again each time
            self.graphs[name] = import_model(gdir / "model.py", name).load(gdir, compile=compile and name != "decoder_step")
        self.info = self.manifest["seq2seq"]
        self.config = dict(self.info["generation"])
        inputs = {i["name"]: i for i in self.manifest["graphs"]["decoder_step"]["inputs"]}
        mask = inputs.get("encoder_attention_mask")  # speech models (Whisper) have none: full windows
        self.mask_dtype = getattr(mx, mask["dtype"]) if mask else None
        self.ids_dtype = getattr(mx, inputs["decoder_input_ids"]["dtype"])
        self.kv_dtype = getattr(mx, inputs["self_keys_0"]["dtype"])
        self._text = None

    def __getattr__(self, name):
        graphs = self.__dict__.get("graphs", {})
        if name in graphs:
            return graphs[name]
        raise AttributeError(f"the program has no graph {name!r} (graphs: {', '.join(graphs)})")

    # -- settings ----------------------------------------------------------------------------------
    def settings(self, **kwargs):
        unknown = sorted(set(kwargs) - set(SETTINGS))
        if unknown:
            raise TypeError(f"unknown generation argument(s) {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
        s = {k: DEFAULTS.get(k) for k in SETTINGS}
        s.update({k: v for k, v in self.config.items() if v is not None})
        s.update({k: v for k, v in kwargs.items() if v is not None or k in ("forced_bos_token_id", "forced_eos_token_id")})
        for k, ok in NOT_IMPLEMENTED.items():
            if s.get(k) not in ok:
                raise ValueError(f"{k}={s[k]!r} is not implemented by this driver (greedy and beam search only)")
        eos = s["eos_token_id"]
        s["eos"] = [] if eos is None else ([int(eos)] if isinstance(eos, int) else [int(e) for e in eos])
        if s["pad_token_id"] is None and s["eos"]:
            s["pad_token_id"] = s["eos"][0]
        if s["decoder_start_token_id"] is None:
            s["decoder_start_token_id"] = s["bos_token_id"]
        start = s["decoder_start_token_id"]
        s["start"] = int(start[0] if isinstance(start, list) else start)
        if kwargs.get("max_new_tokens") is not None:
            s["max_length"] = int(kwargs["max_new_tokens"]) + 1
        elif kwargs.get("max_length") is None and s.get("max_new_tokens") is not None:
            s["max_length"] = int(s["max_new_tokens"]) + 1
        if s["num_return_sequences"] > s["num_beams"]:
            raise ValueError("num_return_sequences must be at most num_beams")
        return s

    # -- graphs ------------------------------------------------------------------------------------
    def batch(self, input_ids, attention_mask, pad, eos=()):
        """Rows of ids (lists of different lengths are right-padded) -> (ids, mask) as mx arrays."""
        if isinstance(input_ids, mx.array) or hasattr(input_ids, "shape"):
            ids = mx.array(input_ids).astype(mx.int64)
            if ids.ndim == 1:
                ids = ids[None]
            if attention_mask is None:
                rows = ids.tolist()
                has_pad = pad is not None and any(pad in r for r in rows)
                mask = (ids != pad) if has_pad and pad not in eos else mx.ones(ids.shape, mx.int64)
            else:
                mask = mx.array(attention_mask)
            return ids, mask.astype(self.mask_dtype)
        rows = [list(input_ids)] if input_ids and isinstance(input_ids[0], int) else [list(r) for r in input_ids]
        n = max(len(r) for r in rows)
        fill = pad if pad is not None else 0
        ids = mx.array([r + [fill] * (n - len(r)) for r in rows], dtype=mx.int64)
        mask = mx.array([[1] * len(r) + [0] * (n - len(r)) for r in rows]) if attention_mask is None \
            else mx.array(attention_mask)
        return ids, mask.astype(self.mask_dtype)

    def encode(self, ids, mask, repeat=1):
        """-> (cross keys, cross values, encoder mask), rows repeated `repeat` times (beams)."""
        hidden = self.graphs["encoder"](ids, mask)
        keys, values = self.graphs["cross_kv"](hidden)
        if repeat > 1:
            keys = [mx.repeat(k, repeat, axis=0) for k in keys]
            values = [mx.repeat(v, repeat, axis=0) for v in values]
            mask = mx.repeat(mask, repeat, axis=0)
        return list(keys), list(values), mask

    def empty_cache(self, n):
        shapes = self.info["self_kv"]
        return ([mx.zeros((n, h, 0, d), self.kv_dtype) for (h, d), _ in shapes],
                [mx.zeros((n, h, 0, d), self.kv_dtype) for _, (h, d) in shapes])

    def step(self, tokens, state):
        """One decoder step for the last tokens (list of N ints) -> float32 logits (N, V); updates state."""
        keys, values, cross_k, cross_v, mask = state["keys"], state["values"], state["ck"], state["cv"], state["mask"]
        ids = mx.array(tokens, dtype=self.ids_dtype)[:, None]
        first = (ids,) if mask is None else (ids, mask)
        logits, keys, values = self.graphs["decoder_step"](*first, *keys, *values, *cross_k, *cross_v)
        state["keys"], state["values"] = list(keys), list(values)
        return logits.astype(mx.float32)

    # -- logits processors (HF's order: _get_logits_processor) -------------------------------------
    def process(self, seqs, scores, s):
        """seqs: the N running sequences (lists, decoder start first); scores (N, V) -> processed."""
        n, vocab = scores.shape
        cur = len(seqs[0])
        eos = [e for e in s["eos"] if e < vocab]
        banned = [set() for _ in range(n)]  # -> -inf
        if s["repetition_penalty"] not in (None, 1.0):
            p = s["repetition_penalty"]
            hit = _mask(n, vocab, [set(t for t in r if t < vocab) for r in seqs])
            scores = mx.where(hit, mx.where(scores < 0, scores * p, scores / p), scores)
        ng = s["no_repeat_ngram_size"] or 0
        if ng > 0 and cur >= ng:
            for i, r in enumerate(seqs):
                prefix = r[cur + 1 - ng:]
                for j in range(cur - ng + 1):
                    if r[j:j + ng - 1] == prefix:
                        banned[i].add(r[j + ng - 1])
        if s["bad_words_ids"]:
            for word in s["bad_words_ids"]:
                if len(word) == 1 and word[0] in s["eos"]:
                    continue
                for i, r in enumerate(seqs):
                    if len(word) == 1 or (len(word) - 1 <= cur and r[cur - len(word) + 1:] == word[:-1]):
                        banned[i].add(word[-1])
        if any(banned):
            scores = mx.where(_mask(n, vocab, banned), -math.inf, scores)
        if eos and (cur < (s["min_length"] or 0) or cur - 1 < (s["min_new_tokens"] or 0)):
            scores = mx.where(_mask(n, vocab, [set(eos)] * n), -math.inf, scores)
        if s["forced_bos_token_id"] is not None and cur == 1:
            scores = _only(scores, s["forced_bos_token_id"])
        if s["forced_eos_token_id"] is not None and cur == s["max_length"] - 1:
            forced = s["forced_eos_token_id"]
            scores = _only(scores, forced if isinstance(forced, list) else [forced])
        if s["suppress_tokens"]:
            scores = mx.where(_mask(n, vocab, [set(s["suppress_tokens"])] * n), -math.inf, scores)
        if s["begin_suppress_tokens"]:
            begin = 1 if s["forced_bos_token_id"] is None else 2
            if cur == begin:
                scores = mx.where(_mask(n, vocab, [set(s["begin_suppress_tokens"])] * n), -math.inf, scores)
        return scores

    def new_tokens(self, row):
        """A generated row without the decoder start token and the padding after its end."""
        s = self.settings()
        out = []
        for t in row[1:]:
            out.append(t)
            if t in s["eos"]:
                break
        return out

    # -- text -------------------------------------------------------------------------------------
    def text_tokenizer(self):
        if self._text is None:
            self._text = TextTokenizer(self.folder, self.manifest.get("translation"))
        return self._text

    def prepare(self, texts, src=None, tgt=None):
        """Texts -> (token id rows as the model's HF tokenizer makes them, generation settings for the target
        language), e.g. NLLB/M2M100: source language token around the text and forced BOS = target language;
        MADLAD/T5: `<2xx>` before the text; Marian: one fixed pair."""
        return self.text_tokenizer().prepare([texts] if isinstance(texts, str) else list(texts), src, tgt)

    def translate(self, texts, src=None, tgt=None, **kwargs):
        """A list of texts (or one text) -> a list of translations (num_return_sequences per text, in order).
        Keyword arguments are generation settings (num_beams, max_new_tokens, …) as in `generate`."""
        rows, extra = self.prepare(texts, src, tgt)
        if not rows:
            return []
        tk = self.text_tokenizer()
        out = self.generate(rows, **{**extra, **kwargs})
        eos = self.settings(**{k: v for k, v in kwargs.items() if k == "eos_token_id"})["eos"]
        return [tk.decode(_until(r[1:], eos)) for r in out]

    # -- generation --------------------------------------------------------------------------------
    def generate(self, input_ids, attention_mask=None, **kwargs):
        """Token ids per row (lists), equal to HF `generate(input_ids, attention_mask, **kwargs)`."""
        s = self.settings(**kwargs)
        ids, mask = self.batch(input_ids, attention_mask, s["pad_token_id"], s["eos"])
        if s["num_beams"] > 1:
            return self._beam_search(ids, mask, s)
        return self._greedy(ids, mask, s)

    def _greedy(self, ids, mask, s):
        ck, cv, mask = self.encode(ids, mask)
        return self.greedy_from(ck, cv, mask, [[s["start"]] for _ in range(ids.shape[0])], s)

    def prefill(self, prefix, state):
        """Feed all but the last token of each (equal-length) prompt row through the decoder step."""
        for j in range(len(prefix[0]) - 1):
            self.step([r[j] for r in prefix], state)

    def greedy_from(self, ck, cv, mask, prefix, s):
        """Greedy decoding from the decoder prompt rows `prefix` (equal lengths) on encoded cross K/V."""
        b = len(prefix)
        keys, values = self.empty_cache(b)
        state = {"keys": keys, "values": values, "ck": ck, "cv": cv, "mask": mask}
        seqs = [list(r) for r in prefix]
        self.prefill(seqs, state)
        unfinished = [True] * b
        pad = s["pad_token_id"]
        while True:
            logits = self.step([r[-1] for r in seqs], state)
            scores = self.process(seqs, logits, s)
            nxt = mx.argmax(scores, axis=-1).tolist()
            for i in range(b):
                tok = nxt[i] if unfinished[i] or not s["eos"] else pad
                seqs[i].append(tok)
                if len(seqs[i]) >= s["max_length"] or tok in s["eos"]:
                    unfinished[i] = False
            if not any(unfinished):
                return seqs

    def _beam_search(self, ids, mask, s):
        ck, cv, mask = self.encode(ids, mask, s["num_beams"])
        return self.beam_from(ck, cv, mask, [[s["start"]] for _ in range(ids.shape[0])], s)

    def beam_from(self, ck, cv, mask, prefix, s):
        """Beam search from the decoder prompt rows `prefix` (equal lengths; K/V already repeated per beam)."""
        b, nb = len(prefix), s["num_beams"]
        eos, lp, early, max_len = s["eos"], s["length_penalty"], s["early_stopping"], s["max_length"]
        k_keep = max(2, 1 + len(eos)) * nb
        pad = s["pad_token_id"]
        fill = (pad or eos[0]) if eos else -1
        keys, values = self.empty_cache(b * nb)
        state = {"keys": keys, "values": values, "ck": ck, "cv": cv, "mask": mask}
        plen = len(prefix[0])
        self.prefill([list(r) for r in prefix for _ in range(nb)], state)
        run_seq = [[list(prefix[i]) for _ in range(nb)] for i in range(b)]
        run_score = [[0.0] + [-1e9] * (nb - 1) for _ in range(b)]
        # finished hypotheses: (tokens, score, finished); placeholders until real ones come
        fin = [[(list(prefix[i]), -1e9, False) for _ in range(nb)] for i in range(b)]
        unsatisfied = [True] * b
        cur = plen
        while True:
            logits = self.step([r[-1] for rows in run_seq for r in rows], state)
            flat = [r for rows in run_seq for r in rows]
            logp = logits - mx.logsumexp(logits, axis=-1, keepdims=True)
            logp = self.process(flat, logp, s)
            vocab = logp.shape[-1]
            acc = logp.reshape(b, nb, vocab) + mx.array(run_score, dtype=mx.float32)[:, :, None]
            acc = acc.reshape(b, nb * vocab)
            top_i, top_v = _topk(acc, k_keep)
            hits_all = True
            reorder = []
            for i in range(b):
                cand = []
                for v, idx in zip(top_v[i], top_i[i]):
                    beam, tok = idx // vocab, idx % vocab
                    seq = run_seq[i][beam] + [tok]
                    hit = len(seq) >= max_len or tok in eos
                    cand.append((seq, v, beam, hit))
                hits_all = hits_all and all(c[3] for c in cand)
                # e. next running beams: the best non-finished candidates
                running = sorted(range(k_keep), key=lambda j: -f32(cand[j][1] + (-1e9 if cand[j][3] else 0.0)))[:nb]
                run_seq[i] = [cand[j][0] for j in running]
                run_score[i] = [f32(cand[j][1] + (-1e9 if cand[j][3] else 0.0)) for j in running]
                reorder += [i * nb + cand[j][2] for j in running]
                # f. finished hypotheses
                all_done = all(h[2] for h in fin[i]) and early is True
                new = []
                for j, (seq, v, _, hit) in enumerate(cand):
                    sc = f32(v / f32((cur + 1 - plen) ** lp))
                    if all_done:
                        sc = f32(sc - 1e9)
                    if not unsatisfied[i]:
                        sc = f32(sc - 1e9)
                    done = hit and j < nb
                    if not done:
                        sc = f32(sc - 1e9)
                    new.append((seq, sc, done))
                merged = fin[i] + new
                order = sorted(range(len(merged)), key=lambda j: -merged[j][1])[:nb]
                fin[i] = [merged[j] for j in order]
            cur += 1
            for i in range(b):  # HF's _check_early_stop_heuristic
                best_len = (max_len - plen) if (early == "never" and lp > 0.0) else (cur - plen)
                best = f32(run_score[i][0] / f32(best_len ** lp))
                worst = min(h[1] for h in fin[i])
                unsatisfied[i] = unsatisfied[i] and any(best > (worst if h[2] else -1e9) for h in fin[i])
            all_finished = all(h[2] for rows in fin for h in rows)
            if not (any(unsatisfied) and not (all_finished and early is True) and not hits_all):
                break
            idx = mx.array(reorder, dtype=mx.int32)
            state["keys"] = [mx.take(k, idx, axis=0) for k in state["keys"]]
            state["values"] = [mx.take(v, idx, axis=0) for v in state["values"]]
        out = [h[0] for rows in fin for h in rows[:s["num_return_sequences"]]]
        length = max(len(r) for r in out)
        return [r + [fill] * (length - len(r)) for r in out]


def _topk(x, k):
    """(indices, values) of the k largest entries per row, best first (ties: lower index first)."""
    part = mx.argpartition(-x, k - 1, axis=-1)[:, :k]
    vals = mx.take_along_axis(x, part, axis=-1)
    idx_rows, val_rows = part.tolist(), vals.tolist()
    out_i, out_v = [], []
    for ir, vr in zip(idx_rows, val_rows):
        pairs = sorted(zip(vr, ir), key=lambda p: (-p[0], p[1]))
        out_i.append([p[1] for p in pairs])
        out_v.append([p[0] for p in pairs])
    return out_i, out_v


def _mask(n, vocab, sets):
    """(n, vocab) boolean mask with row i true at the token ids in sets[i]."""
    flat = [i * vocab + t for i, ids in enumerate(sets) for t in ids if 0 <= t < vocab]
    m = mx.zeros((n * vocab,), dtype=mx.bool_)
    if flat:
        m[mx.array(flat, dtype=mx.int32)] = True
    return m.reshape(n, vocab)


def _only(scores, tokens):
    tokens = tokens if isinstance(tokens, list) else [tokens]
    n, vocab = scores.shape
    return mx.where(_mask(n, vocab, [set(tokens)] * n), 0.0, -math.inf).astype(scores.dtype)


def _until(row, eos):
    out = []
    for t in row:
        out.append(t)
        if t in eos:
            break
    return out


class TextTokenizer:
    """The model's tokenizer as recorded at compile time (manifest["translation"]): tokenizer.json through
    `tokenizers`, or the sentencepiece model + vocab.json of the slow-only M2M100 / Marian tokenizers
    through `sentencepiece`, reproducing transformers' encode and decode(skip_special_tokens=True)."""

    def __init__(self, folder, info):
        if not info:
            raise ValueError(f"{folder} has no tokenizer information (compiled without a tokenizer, or by an older "
                             "fx2mlx): pass token ids to generate() instead")
        if "error" in info:
            raise ValueError(f"{folder}: no text translation: {info['error']}")
        self.info = info
        self.special = set(info["special_ids"])
        self.marian = info["class"].startswith("Marian")
        if info["tokenizer"] == "tokenizers":
            from tokenizers import Tokenizer

            self.tk = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        else:
            import sentencepiece

            files = info["spm"]
            self.tk = None
            self.sp_src = sentencepiece.SentencePieceProcessor(model_file=str(Path(folder) / files["source"]))
            self.sp_tgt = sentencepiece.SentencePieceProcessor(model_file=str(Path(folder) / files["target"]))
            self.vocab = json.loads((Path(folder) / files["vocab"]).read_text(encoding="utf-8"))
            self.inv = {v: k for k, v in self.vocab.items()}
            self.inv.update({v: k for k, v in info.get("languages_in_vocab", {}).items()})
            self.vocab.update(info.get("languages_in_vocab", {}))
            self.special_tokens = set(info["special_tokens"])

    def ids(self, text):
        """Token ids of a text without special tokens."""
        if self.tk is not None:
            return self.tk.encode(text, add_special_tokens=False).ids
        code = []
        if self.marian and text.startswith(">>") and text.find("<<") != -1:  # MarianTokenizer._tokenize
            end = text.find("<<")
            code, text = [text[:end + 2]], text[end + 2:]
        unk = self.info["unk_id"]
        return [self.vocab.get(p, unk) for p in code + self.sp_src.encode(text, out_type=str)]

    def prepare(self, texts, src, tgt):
        info, langs, gen = self.info, self.info["languages"], {}
        if langs:
            src = src if src is not None else info.get("src_lang")
            tgt = tgt if tgt is not None else info.get("tgt_lang")
            for what, code in (("source", src), ("target", tgt)):
                if code is None or code not in langs:
                    some = ", ".join(sorted(langs)[:12]) + (", …" if len(langs) > 12 else "")
                    raise ValueError(f"pass a {what} language ({'src' if what == 'source' else 'tgt'}): "
                                     f"{code!r} is not one of the model's {len(langs)} languages ({some})")
            gen["forced_bos_token_id"] = langs[tgt]
        elif info.get("target_prefix"):
            codes = info.get("target_codes") or []
            if src is not None:
                raise ValueError("this model reads the source language from the text: pass only tgt")
            if tgt is None or tgt not in codes:
                some = ", ".join(codes[:12]) + (", …" if len(codes) > 12 else "")
                raise ValueError(f"pass a target language (tgt): {tgt!r} is not one of the model's {len(codes)} "
                                 f"target tags ({some})")
            texts = [info["target_prefix"].format(tgt) + t for t in texts]
        elif src is not None or tgt is not None:
            raise ValueError("this model translates one fixed language pair: src and tgt do not apply")
        lang = langs.get(src) if langs else None
        prefix = [lang if t == "src" else t for t in info["prefix"]]
        suffix = [lang if t == "src" else t for t in info["suffix"]]
        return [prefix + self.ids(t) + suffix for t in texts], gen

    def decode(self, ids):
        """Text of generated ids, special tokens skipped (transformers' decode(skip_special_tokens=True))."""
        if self.tk is not None:
            text = self.tk.decode(list(ids), skip_special_tokens=True)
        else:
            tokens = [self.inv.get(i, self.info["unk_token"]) for i in ids if i not in self.special]
            out, cur = "", []
            for t in tokens:
                if t in self.special_tokens:
                    out += self.sp_tgt.decode_pieces(cur) + t + (" " if self.marian else "")
                    cur = []
                else:
                    cur.append(t)
            out += self.sp_tgt.decode_pieces(cur)
            text = (out.replace("\u2581", " ") if self.marian else out).strip()
        if self.info.get("clean_up_tokenization_spaces"):
            for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                         (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
                text = text.replace(a, b)
        return text


def load(path=None, compile=True):
    return Seq2Seq(Path(path) if path is not None else Path(__file__).resolve().parent, compile=compile)
