"""Compare baggan's StyleGAN2 networks with the reference implementations, given their sources.

    .venv/bin/python scripts/verify_networks_reference.py --nvlabs DIR [--rosinality DIR] [--full]

--nvlabs DIR: a stylegan2-ada-pytorch checkout (training/networks.py, torch_utils/, dnnlib/; its dnnlib
imports `requests`). Networks are built with the official classes and the official train.py kwargs,
perturbed, written as an official snapshot pickle (real persistence module), loaded with
baggan.stylegan2.load_network, and G mapping / synthesis (all noise modes, fused and not), G(z, c),
D logits and training gradients are compared (float32, CPU, force_fp32).
--rosinality DIR: a directory whose `model` module provides rosinality's Generator/Discriminator and can
run on the CPU (rosinality's own op/ package compiles CUDA at import; swap in its native functions).
Nothing from those directories is copied into baggan. Prints the max abs differences and writes them to
docs/benchmarks/networks_reference.json.
"""

from __future__ import annotations

import argparse
import copy
import pickle
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from baggan.io import write_json_atomic  # noqa: E402
from baggan.stylegan2 import load_network  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks" / "networks_reference.json"


def perturb(module: torch.nn.Module, seed: int) -> None:
    """Random non-trivial weights (noise strengths, biases, w_avg included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * (0.3 if p.ndim <= 1 else 0.05))
        for name, b in module.named_buffers():
            if name.endswith("w_avg"):
                b.copy_(torch.randn(b.shape, generator=g))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def nvlabs_case(name: str, res: int, c_dim: int, zdim: int, cmax: int, cbase: int, layers: int,
                g_arch: str, d_arch: str, mbstd: int, tmp: Path) -> dict[str, float]:
    """Official nets (train.py-style kwargs) → snapshot pickle → ours; max abs differences per output."""
    import dnnlib
    from training import networks as off

    G_kwargs = dnnlib.EasyDict(z_dim=zdim, w_dim=zdim, mapping_kwargs=dnnlib.EasyDict(num_layers=layers),
                               synthesis_kwargs=dnnlib.EasyDict(channel_base=cbase, channel_max=cmax, num_fp16_res=4,
                                                                conv_clamp=256, architecture=g_arch))
    D_kwargs = dnnlib.EasyDict(block_kwargs=dnnlib.EasyDict(), mapping_kwargs=dnnlib.EasyDict(),
                               epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=mbstd), channel_base=cbase,
                               channel_max=cmax, num_fp16_res=4, conv_clamp=256, architecture=d_arch)
    common = dict(c_dim=c_dim, img_resolution=res, img_channels=3)
    torch.manual_seed(0)
    G = off.Generator(**G_kwargs, **common)
    D = off.Discriminator(**D_kwargs, **common)
    perturb(G, 1), perturb(D, 2)
    G_ema = copy.deepcopy(G)
    perturb(G_ema, 3)
    snap = {"training_set_kwargs": {"resolution": res}, "augment_pipe": None}
    for k, m in [("G", G), ("D", D), ("G_ema", G_ema)]:
        snap[k] = copy.deepcopy(m).eval().requires_grad_(False).cpu()
    path = tmp / f"{name}.pkl"
    with open(path, "wb") as f:
        pickle.dump(snap, f)
    ours = load_network(path)

    n = 2
    z = torch.randn(n, zdim, generator=torch.Generator().manual_seed(5))
    c = torch.eye(c_dim)[torch.arange(n) % c_dim] if c_dim else None
    out: dict[str, float] = {}
    with torch.no_grad():
        ref_g = snap["G_ema"]
        for psi, cutoff in [(1, None), (0.7, None), (0.5, 4)]:
            out[f"mapping psi={psi} cutoff={cutoff}"] = max_diff(
                ref_g.mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff),
                ours["G_ema"].mapping(z, c, truncation_psi=psi, truncation_cutoff=cutoff))
        ws = ref_g.mapping(z, c, truncation_psi=0.8)
        ws = ws + 0.3 * torch.randn(ws.shape, generator=torch.Generator().manual_seed(6))
        for fused in (True, False):
            for mode in ("const", "none", "random"):
                torch.manual_seed(11)  # same random noise draws in both
                a = ref_g.synthesis(ws, noise_mode=mode, force_fp32=True, fused_modconv=fused)
                torch.manual_seed(11)
                b = ours["G_ema"].synthesis(ws, noise_mode=mode, force_fp32=True, fused_modconv=fused)
                out[f"synthesis fused={fused} noise={mode}"] = max_diff(a, b)
        out["G(z, c) const noise"] = max_diff(snap["G"](z, c, noise_mode="const", force_fp32=True),
                                             ours["G"](z, c, noise_mode="const", force_fp32=True))
        img = torch.randn(n, 3, res, res, generator=torch.Generator().manual_seed(7))
        out["D logits"] = max_diff(snap["D"](img, c, force_fp32=True), ours["D"](img, c, force_fp32=True))
    ref_t = copy.deepcopy(snap["G"]).train().requires_grad_(True)
    our_t = ours["G"].train().requires_grad_(True)
    for m in (ref_t, our_t):
        torch.manual_seed(13)
        m.synthesis(ws, noise_mode="const", force_fp32=True).square().mean().backward()
    ref_grads = dict(ref_t.named_parameters())
    out["G gradients (training mode)"] = max(max_diff(ref_grads[k].grad, p.grad)
                                             for k, p in our_t.named_parameters() if p.grad is not None)
    out["image |max|"] = a.abs().max().item()
    return out


def rosinality_case(size: int, multiplier: int, n_mlp: int, tmp: Path) -> dict[str, float]:
    """rosinality nets → torch.save checkpoint → ours; max abs differences of image and D logits."""
    import model as ros

    torch.manual_seed(0)
    g, d = ros.Generator(size, 512, n_mlp, channel_multiplier=multiplier).eval(), ros.Discriminator(size, multiplier).eval()
    perturb(g, 1), perturb(d, 2)
    with torch.no_grad():
        latent_avg = g.style(torch.randn(4096, 512, generator=torch.Generator().manual_seed(4))).mean(0)
    path = tmp / f"rosinality{size}.pt"
    torch.save({"g_ema": g.state_dict(), "d": d.state_dict(), "latent_avg": latent_avg}, path)
    ours = load_network(path)
    z = torch.randn(4, 512, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a, _ = g([z], truncation=0.7, truncation_latent=latent_avg[None], randomize_noise=False)
        b = ours["G_ema"](z, None, truncation_psi=0.7, noise_mode="const")
        img = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(3))
        return {"image (const noise, psi 0.7)": max_diff(a, b), "D logits": max_diff(d(img), ours["D"](img, None)),
                "image |max|": a.abs().max().item()}


def main() -> None:
    """Run the comparisons whose sources were given; print and write the differences."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nvlabs", type=Path)
    ap.add_argument("--rosinality", type=Path)
    ap.add_argument("--full", action="store_true", help="add the FF-HQ-256 config-f size (minutes on 2 cores)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.nvlabs:
            sys.path.insert(0, str(args.nvlabs))
            cases = [("auto64", 64, 0, 64, 128, 16384, 2, "skip", "resnet", 4),
                     ("cond32_resnetG_skipD", 32, 5, 64, 128, 8192, 8, "resnet", "skip", 2),
                     ("orig16", 16, 0, 64, 128, 4096, 8, "orig", "orig", 4)]
            if args.full:
                cases.append(("stylegan2_256", 256, 0, 512, 512, 32768, 8, "skip", "resnet", 2))
            for case in cases:
                results[f"nvlabs {case[0]}"] = nvlabs_case(*case, tmp=Path(tmp))
        if args.rosinality:
            sys.path.insert(0, str(args.rosinality))
            for size, mult, n_mlp in [(64, 2, 8), (128, 1, 4)]:
                results[f"rosinality {size} x{mult} mlp{n_mlp}"] = rosinality_case(size, mult, n_mlp, Path(tmp))
    worst = 0.0
    for case, diffs in results.items():
        print(f"== {case}")
        for k, v in diffs.items():
            print(f"   {k:45s} {v:.3e}")
            worst = max(worst, v) if k != "image |max|" else worst
    print(f"worst max abs difference: {worst:.3e} (target <= 1e-4)")
    write_json_atomic(OUT, {"cases": results, "worst_max_abs_diff": worst}, indent=1)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
