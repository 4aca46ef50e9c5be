#!/usr/bin/env python3
"""The peer benchmark: Hugging Face transformers' BertForPreTraining at
BERT-Base size, timed the way `smx bench` times its models, and printed as the
same JSON (one result, named "hf-bert-base").

Matched with `smx bench -p bert-base`:
  - shape: 12 layers, d_model 768, 12 heads, d_ff 3072, vocabulary 32000,
    4 segment types, 512 positions, dropout 0.1, LayerNorm eps 1e-12;
  - batch: random token ids in [5, V), two segments, no padding (so no
    attention mask, as in smx bench: flash attention can be used), P distinct
    masked positions per example, P = clamp((S*20 + 127) // 128, 1, 80);
  - masked-LM head policy: the prediction head runs on the P masked positions
    only (gathered), as our engine does, not on all S positions as
    BertForPreTraining.forward would; NSP on the pooled [CLS];
  - SDPA attention, bf16 autocast with the losses in float32, fused AdamW
    (lr 1e-4, betas 0.9/0.999, eps 1e-6, weight decay 0.01 on everything);
  - timing: warm-up steps untimed, then each step between two device
    synchronisations, median reported; inference = encoder + MLM head.

Runs where python3 has torch and transformers (the GPU machine).
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def mlm_predictions(seq_len):
    return max(1, min(80, (seq_len * 20 + 127) // 128))


def synthetic_batch(vocab, batch, seq, predictions, device):
    ids = torch.randint(5, vocab, (batch, seq), device=device)
    types = (torch.arange(seq, device=device) >= seq // 2).long().expand(batch, seq).contiguous()
    keys = torch.rand(batch, seq - 1, device=device)
    positions = keys.topk(min(predictions, seq - 1), dim=-1).indices + 1  # never [CLS]
    labels = ids.gather(1, positions)
    nsp = torch.randint(0, 2, (batch,), device=device)
    return ids, types, positions, labels, nsp


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--no-bf16", dest="bf16", action="store_false")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()

    from transformers import BertConfig, BertForPreTraining
    import transformers

    device = torch.device(a.device)
    torch.manual_seed(a.seed)
    config = BertConfig(vocab_size=32000, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                        intermediate_size=3072, hidden_act="gelu", hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=4,
                        layer_norm_eps=1e-12, initializer_range=0.02)
    config._attn_implementation = "sdpa"
    model = BertForPreTraining(config).to(device)
    attn = getattr(model.config, "_attn_implementation", "?")
    if attn != "sdpa":
        sys.exit(f"hf_bert_peer: attention implementation is {attn!r}, not 'sdpa'")
    params = sum(t.numel() for t in model.parameters())
    P = mlm_predictions(a.seq)
    batch = synthetic_batch(config.vocab_size, a.batch, a.seq, P, device)
    ids, types, positions, labels, nsp = batch
    autocast = a.bf16 and device.type == "cuda"
    fused = device.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.01,
                            fused=fused)

    def heads(hidden, pooled):
        picked = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.size(-1)))  # [B, P, D]
        return model.cls.predictions(picked), model.cls.seq_relationship(pooled)

    def train_step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            out = model.bert(input_ids=ids, token_type_ids=types)
            mlm, nsp_logits = heads(out.last_hidden_state, out.pooler_output)
        loss = F.cross_entropy(mlm.float().view(-1, mlm.size(-1)), labels.view(-1)) + \
            F.cross_entropy(nsp_logits.float(), nsp)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def infer_step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            out = model.bert(input_ids=ids, token_type_ids=types)
            hidden = out.last_hidden_state
            picked = hidden.gather(1, positions.unsqueeze(-1).expand(-1, -1, hidden.size(-1)))
            model.cls.predictions(picked)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def measure(step):
        samples = []
        for i in range(a.warmup + a.repeats):
            sync()
            t0 = time.perf_counter()
            step()
            sync()
            if i >= a.warmup:
                samples.append((time.perf_counter() - t0) * 1e3)
        return samples

    def peak(step):
        if device.type != "cuda":
            return measure(step), -1
        torch.cuda.reset_peak_memory_stats(device)
        samples = measure(step)
        return samples, torch.cuda.max_memory_allocated(device)

    model.train()
    train_samples, train_peak = peak(train_step)
    model.eval()
    infer_samples, infer_peak = peak(infer_step)
    train_ms, infer_ms = statistics.median(train_samples), statistics.median(infer_samples)
    result = {
        "name": "hf-bert-base", "device": str(device), "batch_size": a.batch, "seq_len": a.seq,
        "mlm_predictions": P, "params": params,
        "train_ms_per_step": train_ms, "infer_ms_per_step": infer_ms,
        "train_ms_per_example": train_ms / a.batch, "infer_ms_per_example": infer_ms / a.batch,
        "train_samples_ms": train_samples, "infer_samples_ms": infer_samples,
        "peak_memory_bytes": train_peak, "infer_peak_memory_bytes": infer_peak,
        "optimizer": "fused" if fused else "foreach",
    }
    print(json.dumps({"peer": "transformers " + transformers.__version__, "torch_version": torch.__version__,
                      "device": str(device), "bf16": autocast, "attention": attn, "results": [result]}, indent=2))


if __name__ == "__main__":
    main()
