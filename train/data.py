"""Streaming shards into training batches: contract parsing, cluster/random batching, collation.

The stream is `webdataset` (via `kgclip.wds.open_webdataset`, so 0.2.86 and 1.0.x both
work) over an epoch-seeded shard order, split by node (rank) and by DataLoader worker. Samples are
batched from their json metadata first and images are decoded only for the batches that are used,
so skipping batches on `--resume` costs almost nothing and memory is bounded by `buffer_size`.

`cluster` batching (SimCLIP): each batch takes `batch_size / clusters_per_batch` samples from each
of `clusters_per_batch` clusters of the buffer (biggest first, ties broken by the seeded rng), so
in-batch negatives come from similar images; shards keep a cluster's samples contiguous, which
keeps the buffer small. `random` batching: a classic shuffle buffer.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from clusterbuild import contract
from kgclip.wds import open_webdataset
from train import facts
from train.ahnm import ROLE_KG, ROLE_POSITIVE, ROLE_PRIMARY, ROLE_SOURCE, Columns, Facts
from train.facts import normalize_text


def resolve_shards(shards: list[str]) -> list[str]:
    """Tar paths from folders, tar files and brace patterns; clear errors for empty inputs."""
    from webdataset.shardlists import expand_urls

    if not shards:
        raise ValueError("no shards given: pass a shard folder, tar files or a brace pattern")
    urls: list[str] = []
    for s in shards:
        p = Path(s)
        if p.is_dir():
            found = [str(x) for x in contract.list_shards(p)]
            if not found:
                raise ValueError(f"shard folder {p} holds no shards (expected {contract.SHARD_PATTERN.format(index=0)} ...)")
            urls += found
        else:
            expanded = expand_urls(s)
            missing = [u for u in expanded if not Path(u).is_file()]
            if missing:
                raise FileNotFoundError(f"shard {missing[0]} does not exist")
            urls += expanded
    if not urls:
        raise ValueError(f"shard list {shards} is empty")
    return urls


@dataclass
class Item:
    """One sample's metadata (cheap) plus its undecoded image."""

    key: str
    image: bytes
    txt: str
    positives: list[str]
    negatives: list[tuple[str, str, str]]  # (text, type, the caption it was edited from or "")
    cluster_id: int
    knn: list[str]
    near_dups: set[str]
    weight: float
    sensitive: dict[str, str]
    meta: dict[str, Any] = field(default_factory=dict, repr=False)
    scene: str | None = None  # facts.scene_signature of the sample's scene graph (None: unknown)
    known: frozenset[str] = frozenset()  # normalised texts of every caption and pseudo-caption


def parse(raw: dict) -> Item:
    """A raw webdataset dict -> Item; a contract violation raises, naming shard and key."""
    url = raw.get("__url__", "?")
    try:
        s = contract.decode_sample(raw)
    except (KeyError, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"shard {url} fails the kgclip contract: {e}") from e
    errors = contract.validate_meta(s.meta, s.key)
    if errors:
        raise ValueError(f"shard {url} fails the kgclip contract at sample {s.key}: {'; '.join(errors)}")
    m = s.meta
    seen = {normalize_text(s.txt)}
    pos = []
    for t in [*m.get("captions", []), *(p["text"] for p in m.get("pseudo_captions", []))]:
        n = normalize_text(t)
        if n and n not in seen:
            seen.add(n)
            pos.append(t)
    negs = [(n["text"], n["type"], str(n.get("caption") or "")) for n in m.get("hard_negatives", []) if n.get("text")]
    return Item(s.key, s.image, s.txt, pos, negs, int(m.get("cluster_id", -1)), list(m.get("knn", [])),
                set(m.get("near_duplicates", []) or []), float(m.get("weight", 1.0)),
                {str(k): str(v) for k, v in (m.get("sensitive") or {}).items()}, m,
                facts.scene_signature(m.get("scene_graph")), frozenset(seen))


def random_batches(items: Iterator[Item], batch_size: int, buffer_size: int, rng: random.Random
                   ) -> Iterator[list[Item]]:
    buf: list[Item] = []
    out: list[Item] = []
    for it in items:
        buf.append(it)
        if len(buf) < buffer_size:
            continue
        out.append(buf.pop(rng.randrange(len(buf))))
        if len(out) == batch_size:
            yield out
            out = []
    rng.shuffle(buf)
    for it in buf:
        out.append(it)
        if len(out) == batch_size:
            yield out
            out = []
    if len(out) >= 2:
        yield out


def cluster_batches(items: Iterator[Item], batch_size: int, clusters_per_batch: int, buffer_size: int,
                    rng: random.Random, mix=None) -> Iterator[list[Item]]:
    """Batches of `clusters_per_batch` clusters each, drawn from a buffer of at most `buffer_size`.

    `mix(n)` (optional) is the probability that batch n is built from clusters; otherwise its
    samples are drawn uniformly from the whole buffer (METHOD: the cluster/random mix can follow
    a schedule).
    """
    buf: dict[int, list[Item]] = {}
    held = 0
    quota = max(1, batch_size // clusters_per_batch)
    n_out = 0

    def take() -> list[Item]:
        nonlocal held, n_out
        n_out += 1
        if mix is not None and rng.random() >= mix(n_out - 1):
            flat = [(c, j) for c in sorted(buf) for j in range(len(buf[c]))]
            picks = sorted(rng.sample(flat, min(batch_size, len(flat))), key=lambda x: (x[0], -x[1]))
            batch = [buf[c].pop(j) for c, j in picks]  # popping high j first keeps indices valid
            for c in [c for c in buf if not buf[c]]:
                del buf[c]
            held -= len(batch)
            return batch
        order = sorted(buf, key=lambda c: (-len(buf[c]), rng.random()))
        batch: list[Item] = []
        for c in order[:clusters_per_batch]:
            grab = min(quota, len(buf[c]), batch_size - len(batch))
            batch += [buf[c].pop(rng.randrange(len(buf[c]))) for _ in range(grab)]
        for c in order:  # fill from the biggest remaining clusters when clusters ran short
            while len(batch) < batch_size and buf[c]:
                batch.append(buf[c].pop(rng.randrange(len(buf[c]))))
        for c in [c for c in buf if not buf[c]]:
            del buf[c]
        held -= len(batch)
        return batch

    for it in items:
        buf.setdefault(it.cluster_id, []).append(it)
        held += 1
        if held >= max(buffer_size, batch_size):
            yield take()
    while held >= batch_size:
        yield take()
    if held >= 2:
        yield take()


def sample_negatives(negatives: list[tuple[str, str, str]], k: int, rng: random.Random,
                     sampling: str = "uniform") -> list[tuple[str, str, str]]:
    """k of an image's (text, type, source) KG negatives. `uniform`: any k, so a type's share is its share of
    the table (in the embedded world 19 % replace_obj but 7 % reverse_rel); `balanced`: k different
    types drawn uniformly, one negative of each, then the rest uniformly when there are fewer types."""
    k = min(k, len(negatives))
    if k <= 0:
        return []
    if sampling == "uniform":
        return rng.sample(negatives, k)
    by_type: dict[str, list[int]] = {}
    for j, neg in enumerate(negatives):
        by_type.setdefault(neg[1], []).append(j)
    chosen = [rng.choice(by_type[t]) for t in rng.sample(sorted(by_type), min(k, len(by_type)))]
    if len(chosen) < k:
        rest = [j for j in range(len(negatives)) if j not in set(chosen)]
        chosen += rng.sample(rest, k - len(chosen))
    return [negatives[j] for j in chosen]


TOKEN_CACHE = 1 << 18


class Collator:
    """Items -> a training batch: images, tokenised texts and the column layout for the loss."""

    def __init__(self, preprocess, tokenizer, n_positives: int, n_negatives: int, with_negatives: bool,
                 sampling: str = "uniform", source_positives: str = "off"):
        self.preprocess, self.tokenizer = preprocess, tokenizer
        self.n_positives, self.n_negatives, self.with_negatives = n_positives, n_negatives, with_negatives
        self.sampling, self.source_positives = sampling, source_positives
        self._tokens: dict[str, torch.Tensor] = {}  # the same captions recur every epoch: tokenise once

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """`tokenizer(texts)` with a bounded cache (cleared when it holds `TOKEN_CACHE` texts)."""
        new = [t for t in dict.fromkeys(texts) if t not in self._tokens]
        if new:
            if len(self._tokens) + len(new) > TOKEN_CACHE:
                self._tokens.clear()
            self._tokens.update(zip(new, self.tokenizer(new)))
        return torch.stack([self._tokens[t] for t in texts])

    def texts(self, items: list[Item], rng: random.Random) -> tuple[list[str], Columns]:
        """Columns: every primary caption (column i = image i), then the positives, then the KG negatives.

        `source_positives` (batch | kg): each sampled negative brings the caption it was edited from,
        as a positive of its image (NegCLIP and CE-CLIP contrast a negative with its own source):
        otherwise a negative's wording alone can give it away — in the embedded world every KG
        negative is a pseudo-caption "a red cube left of a blue ball." while the primary captions
        are human-style, and a model learns the style in 40 steps (docs/RESULTS.md). `batch`: the
        source is a positive in the whole loss (ROLE_POSITIVE); `kg`: only in the per-image softmax
        over the image's own texts (ROLE_SOURCE, `kg_softmax`), so a partial source ("a red cube and
        a blue ball.") never pulls two scenes that differ in their relation together.
        """
        texts, owner, role, ntype = [], [], [], []
        for i, it in enumerate(items):  # primary captions first: column i belongs to image i
            texts.append(it.txt)
            owner.append(i), role.append(ROLE_PRIMARY), ntype.append(-1)
        positives = []
        for it in items:
            k = min(self.n_positives - 1, len(it.positives))
            positives.append(rng.sample(it.positives, k) if k > 0 else [])
        negatives = [sample_negatives(it.negatives, self.n_negatives, rng, self.sampling) if self.with_negatives
                     else [] for it in items]
        for i, it in enumerate(items):
            extra = [(t, ROLE_POSITIVE) for t in positives[i]]
            if self.source_positives != "off":
                kind = ROLE_POSITIVE if self.source_positives == "batch" else ROLE_SOURCE
                have = {normalize_text(t) for t in (it.txt, *positives[i])}
                for _, _, src in negatives[i]:
                    n = normalize_text(src)
                    if n and n not in have:
                        have.add(n)
                        extra.append((src, kind))
            for t, r in extra:
                texts.append(t)
                owner.append(i), role.append(r), ntype.append(-1)
        for i, negs in enumerate(negatives):
            for t, typ, _ in negs:
                texts.append(t)
                owner.append(i), role.append(ROLE_KG)
                ntype.append(contract.NEGATIVE_TYPES.index(typ) if typ in contract.NEGATIVE_TYPES else -1)
        return texts, {"owner": owner, "role": role, "neg_type": ntype,
                       "text_norm": [normalize_text(t) for t in texts],
                       "words": [" ".join(facts.content_words(t)) for t in texts],
                       "contrast": [sorted(facts.contrast_classes(t)) for t in texts]}

    def __call__(self, items: list[Item], rng: random.Random) -> dict[str, Any]:
        from PIL import Image

        texts, tmeta = self.texts(items, rng)
        imgs = []
        for it in items:
            try:
                with Image.open(io.BytesIO(it.image)) as im:
                    imgs.append(self.preprocess(im.convert("RGB")))
            except Exception as e:  # a broken image is a contract violation of its shard
                raise ValueError(f"sample {it.key} ({it.meta.get('source', '?')}): image does not decode: {e}") from e
        meta = {**tmeta, "keys": [it.key for it in items], "near_dups": [sorted(it.near_dups) for it in items],
                "sensitive": [it.sensitive for it in items], "weight": [it.weight for it in items],
                "cluster_id": [it.cluster_id for it in items], "knn": [it.knn for it in items],
                "scene": [it.scene for it in items], "known": [sorted(it.known) for it in items]}
        return {"images": torch.stack(imgs), "tokens": self.tokenize(texts), "meta": meta}


def layout(metas: list[dict[str, Any]]
           ) -> tuple[Columns, torch.Tensor, dict[str, torch.Tensor], torch.Tensor, Facts]:
    """The loss layout of one (possibly multi-rank) batch: images and texts concatenated in order.

    Returns the text columns, the near-duplicate matrix [B, B], sensitive groups {attr: [B] ids,
    −1 unknown}, per-sample weights [B] and what the data says about the texts (`ahnm.Facts`). Text
    ids, scene ids and group ids are assigned over the whole global batch, so every rank derives
    the same layout from the gathered metadata.
    """
    owner, role, ntype, norm, primary, keys, near, sens, weight = [], [], [], [], [], [], [], [], []
    scene, known, words, contrast = [], [], [], []
    for m in metas:
        off_img, off_txt = len(keys), len(owner)
        owner += [o + off_img for o in m["owner"]]
        role += m["role"]
        ntype += m["neg_type"]
        norm += m["text_norm"]
        primary += [off_txt + j for j, r in enumerate(m["role"]) if r == ROLE_PRIMARY]
        keys += m["keys"]
        near += m["near_dups"]
        sens += m["sensitive"]
        weight += m["weight"]
        scene += m.get("scene") or [None] * len(m["keys"])
        known += m.get("known") or [[] for _ in m["keys"]]
        words += m.get("words") or m["text_norm"]
        contrast += m.get("contrast") or [[] for _ in m["owner"]]
    ids: dict[str, int] = {}
    text_id = [ids.setdefault(t, len(ids)) for t in norm]
    cols = Columns(torch.tensor(owner), torch.tensor(role), torch.tensor(ntype), torch.tensor(text_id),
                   torch.tensor(primary))
    pos = {k: i for i, k in enumerate(keys)}
    nd = torch.zeros(len(keys), len(keys), dtype=torch.bool)
    for i, dups in enumerate(near):
        for k in dups:
            if k in pos and pos[k] != i:
                nd[i, pos[k]] = nd[pos[k], i] = True
    groups: dict[str, torch.Tensor] = {}
    for attr in sorted({a for s in sens for a in s}):
        vals = sorted({s[attr] for s in sens if attr in s})
        groups[attr] = torch.tensor([vals.index(s[attr]) if attr in s else -1 for s in sens])
    return cols, nd, groups, torch.tensor(weight, dtype=torch.float32), _facts(ids, text_id, scene, known, words,
                                                                                 contrast)


def _facts(ids: dict[str, int], text_id: list[int], scene: list[str | None], known: list[list[str]],
           words: list[str], contrast: list[list[int]]) -> Facts:
    scene_ids: dict[str, int] = {}
    sid = [scene_ids.setdefault(s, len(scene_ids)) if s is not None else -1 for s in scene]
    known_pos = torch.zeros(len(scene), len(text_id), dtype=torch.bool)
    tid = torch.tensor(text_id)
    for i, texts in enumerate(known):
        hit = [ids[t] for t in texts if t in ids]
        if hit:
            known_pos[i] = torch.isin(tid, torch.tensor(hit))
    bags: dict[str, int] = {}
    bag_id = [bags.setdefault(" ".join(sorted(w.split())), len(bags)) for w in words]
    orders: dict[str, int] = {}
    order_id = [orders.setdefault(w, len(orders)) for w in words]
    classes = sorted({k for c in contrast for k in c})
    col = {k: j for j, k in enumerate(classes)}
    cm = torch.zeros(len(contrast), len(classes), dtype=torch.bool)
    for t, c in enumerate(contrast):
        for k in c:
            cm[t, col[k]] = True
    return Facts(torch.tensor(sid), known_pos, torch.tensor(bag_id), torch.tensor(order_id), cm)


class ShardStream(torch.utils.data.IterableDataset):
    """One epoch of batches for this rank (and DataLoader worker)."""

    def __init__(self, urls: list[str], collate: Collator, batch_size: int, batching: str,
                 clusters_per_batch: int, buffer_size: int, seed: int, epoch: int, rank: int = 0,
                 skip_batches: int = 0, mix=None):
        super().__init__()
        self.mix = mix  # batch index in this epoch -> probability of a cluster batch (None = 1)
        self.urls, self.collate, self.batch_size = list(urls), collate, batch_size
        self.batching, self.clusters_per_batch, self.buffer_size = batching, clusters_per_batch, buffer_size
        self.seed, self.epoch, self.rank, self.skip_batches = seed, epoch, rank, skip_batches

    def _items(self, urls: list[str]) -> Iterator[Item]:
        ds = open_webdataset(urls, shardshuffle=False, seed=self.seed, split_by_node=True)
        try:
            for raw in ds:
                if raw:  # webdataset >= 0.2.96 yields {} at the end of each shard
                    yield parse(raw)
        finally:
            close = getattr(ds, "close", None)
            if close:
                close()

    def batches(self) -> Iterator[list[Item]]:
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        urls = list(self.urls)
        random.Random(f"{self.seed}-shards-{self.epoch}").shuffle(urls)
        rng = random.Random(f"{self.seed}-batch-{self.epoch}-{self.rank}-{wid}")
        items = self._items(urls)
        if self.batching == "cluster":
            return cluster_batches(items, self.batch_size, self.clusters_per_batch, self.buffer_size, rng,
                                   self.mix)
        return random_batches(items, self.batch_size, self.buffer_size, rng)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        wid = info.id if info else 0
        for n, items in enumerate(self.batches()):
            if n < self.skip_batches and info is None:
                continue  # resume: metadata-only batching, no image decode
            rng = random.Random(f"{self.seed}-texts-{self.epoch}-{self.rank}-{wid}-{n}")
            yield self.collate(items, rng)


def loader(stream: ShardStream, workers: int):
    """A DataLoader yielding the stream's ready batches (`batch_size=None`: batching is ours)."""
    if workers <= 0:
        return stream
    return torch.utils.data.DataLoader(stream, batch_size=None, num_workers=workers,
                                       collate_fn=_identity, persistent_workers=False)


def _identity(batch):
    return batch
