#!/usr/bin/env python3
"""PyTorch reference for the speed section (run by SpeedBenchmark, Debian's python3-torch).

The same architecture as src/Pgkd.Student/StudentModel.cs (MiniLM-L6-H384: 6 post-LayerNorm BERT layers, hidden
384, 12 heads, FFN 1536, exact GELU, LayerNorm eps 1e-12, padding bias -10000, no dropout inside the encoder,
attention-masked mean pooling, dropout 0.1, linear head), random weights (speed does not depend on them), and the
same full fine-tune step the C# side times: zero_grad, cross-entropy forward, backward, clip_grad_norm_(1.0), AdamW.
Prints one JSON object: examples/s over the measured steps and the mean forward / backward / optimizer milliseconds.

usage: pytorch_finetune.py --threads 2 --batch 16 --length 64 --warmup 3 --steps 10 [--classes 4]
"""
import argparse
import json
import math
import time

import torch
from torch import nn

VOCAB, HIDDEN, LAYERS, HEADS, INTERMEDIATE, POSITIONS, TYPES, EPS, MASK_BIAS = 30522, 384, 6, 12, 1536, 512, 2, 1e-12, -10000.0


class BertLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN), nn.Linear(HIDDEN, HIDDEN)
        self.attention_output = nn.Linear(HIDDEN, HIDDEN)
        self.attention_norm = nn.LayerNorm(HIDDEN, eps=EPS)
        self.intermediate = nn.Linear(HIDDEN, INTERMEDIATE)
        self.output = nn.Linear(INTERMEDIATE, HIDDEN)
        self.output_norm = nn.LayerNorm(HIDDEN, eps=EPS)

    def forward(self, x, mask_bias):
        b, t = x.shape[0], x.shape[1]
        d = HIDDEN // HEADS
        q = self.query(x).view(b, t, HEADS, d).transpose(1, 2)
        k = self.key(x).view(b, t, HEADS, d).transpose(1, 2)
        v = self.value(x).view(b, t, HEADS, d).transpose(1, 2)
        scores = q.matmul(k.transpose(-1, -2)).div(math.sqrt(d)).add(mask_bias)
        context = scores.softmax(-1).matmul(v).transpose(1, 2).reshape(b, t, HIDDEN)
        a = self.attention_norm(self.attention_output(context) + x)
        f = self.output(nn.functional.gelu(self.intermediate(a)))
        return self.output_norm(f + a)


class Student(nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.word_embeddings = nn.Embedding(VOCAB, HIDDEN)
        self.position_embeddings = nn.Embedding(POSITIONS, HIDDEN)
        self.token_type_embeddings = nn.Embedding(TYPES, HIDDEN)
        self.embeddings_norm = nn.LayerNorm(HIDDEN, eps=EPS)
        self.layers = nn.ModuleList([BertLayer() for _ in range(LAYERS)])
        self.dropout = nn.Dropout(0.1)
        self.head = nn.Linear(HIDDEN, classes)

    def forward(self, ids, mask):
        t = ids.shape[1]
        positions = torch.arange(t, dtype=torch.int64).unsqueeze(0)
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings(torch.zeros_like(ids))
        x = self.embeddings_norm(x)
        mask_bias = (1.0 - mask.float()).mul(MASK_BIAS).unsqueeze(1).unsqueeze(1)
        for layer in self.layers:
            x = layer(x, mask_bias)
        m = mask.float().unsqueeze(-1)
        pooled = (x * m).sum(1) / m.sum(1).clamp_min(1e-9)
        return self.head(self.dropout(pooled))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--classes", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = Student(a.classes)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    g = torch.Generator().manual_seed(2)
    forward = backward = optimizer = 0.0
    measured_seconds = 0.0
    for step in range(a.warmup + a.steps):
        ids = torch.randint(1000, VOCAB, (a.batch, a.length), generator=g)
        mask = torch.ones(a.batch, a.length, dtype=torch.int64)
        y = torch.arange(a.batch, dtype=torch.int64) % a.classes
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(ids, mask), y)
        loss.item()
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        t3 = time.perf_counter()
        if step >= a.warmup:
            forward += t1 - t0
            backward += t2 - t1
            optimizer += t3 - t2
            measured_seconds += t3 - t0
    print(json.dumps({
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "examplesPerSecond": a.batch * a.steps / measured_seconds,
        "forwardMs": 1000 * forward / a.steps,
        "backwardMs": 1000 * backward / a.steps,
        "optimizerMs": 1000 * optimizer / a.steps,
        "parameters": sum(p.numel() for p in model.parameters()),
    }))


if __name__ == "__main__":
    main()
