"""The RESULTS.md section on what the course ships in ``data/``: each model and experiment record,
its command and its numbers, read from the records themselves (so it cannot go stale)."""

from __future__ import annotations

import json

import common

DATA = common.ROOT / "data"


def _read(name: str) -> dict | None:
    path = DATA / name
    return json.loads(path.read_text()) if path.is_file() else None


def _mean_range(values) -> str:
    return f"{sum(values) / len(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def _machine(m) -> str:
    """A record's machine: a line (older records) or harness.machine()'s dict."""
    return m if isinstance(m, str) else f"{m['cpu']}, {m['cpu_count']} CPU cores"


def _summary(s: dict) -> str:
    return f"{s['mean']:.3f} ({s['min']:.3f}-{s['max']:.3f})"


def _classifier(r: dict) -> list[str]:
    val = r.get("validation_accuracy_per_epoch") or []
    best = max(range(len(val)), key=val.__getitem__) if val else None
    lines = [f"**Classifier** `data/vit_fashion_medium.keras`: `{r['command']}`. "
             f"`{r['model']}` ({r['parameters']:,} parameters), {r['epochs']} epochs on "
             f"{r['train_images']:,} training images, {r['validation_images']:,} held out for "
             f"validation ({r['validation_split']}); the test set evaluated once, at the end. "
             f"Training time {r['training_seconds']:,.0f} s on {_machine(r['machine'])}."]
    if val:
        lines.append(f"Validation accuracy: {val[-1]:.4f} after the last epoch (best {val[best]:.4f}, "
                     f"epoch {best + 1}). **Test accuracy: {r['test_accuracy']:.4f}.**")
    return lines


def render() -> str:
    out = ["## What the course ships: models and experiment records\n",
           "Each file in `data/` was written by the command shown (run from the repository root); "
           "the numbers below are read from its JSON record.\n"]
    r = _read("vit_fashion_medium.json")
    if r:
        out += _classifier(r) + [""]
    r = _read("vit_vs_cnn.json")
    if r:
        sizes = r["sizes"]
        acc = {(p["model"], p["train_images"]): p["test_accuracy"] for p in r["results"]}
        out += [f"**ViT vs CNN** (`{r['command']}`): test accuracy after "
                f"{r['budget_seconds_per_run']:.0f} s of training each, same recipe and seed.", "",
                "| training images | " + " | ".join(f"{n:,}" for n in sizes) + " |",
                "|---|" + "---:|" * len(sizes)]
        for kind, name in (("cnn", "small CNN"), ("vit", "small ViT")):
            out.append(f"| {name} | " + " | ".join(f"{acc[kind, n]:.3f}" for n in sizes) + " |")
        out.append("")
    r = _read("digits_transfer.json")
    if r:
        by = {x["init"]: [] for x in r["runs"]}
        for x in r["runs"]:
            by[x["init"]].append(x["test_accuracy"])
        names = {"pixels": "linear classifier on the pixels",
                 "scratch": f"from scratch, {r['steps']} steps",
                 "probe": "linear probe on the frozen encoder",
                 "full": f"full fine-tuning, {r['steps']} steps",
                 "scratch_long": f"from scratch, {r.get('long_steps')} steps",
                 "full_long": f"full fine-tuning, {r.get('long_steps')} steps"}
        out += [f"**Fine-tuning on digits** (`{r['command']}`): {r['train_images']} training digits "
                f"at {r['image_size']}x{r['image_size']}, {r['test_images']:,} test digits, seeds "
                f"{r['seeds']}; mean (min-max) test accuracy: "
                + "; ".join(f"{names.get(k, k)} {_mean_range(v)}" for k, v in by.items()) + ".", ""]
    r = _read("mae_fashion_small.json")
    if r:
        loss = r["loss_per_epoch"]
        out += [f"**Masked autoencoder** (`{r['command']}`): masked MSE {loss[0]:.3f} after the "
                f"first epoch, {loss[-1]:.3f} after epoch {len(loss)}; "
                f"{r['training_seconds']:,.0f} s.", ""]
    r = _read("label_efficiency.json")
    if r:
        cells = []
        for f in sorted({x["fraction"] for x in r["runs"]}):
            a = {x["init"]: x["test_accuracy"] for x in r["runs"] if x["fraction"] == f}
            cells.append(f"{f:.0%}: {a['mae']:.3f} vs {a['scratch']:.3f}")
        out += [f"**Label efficiency** (`{r['command']}`, {r['steps']} steps per run, one seed): "
                "fine-tuned from the MAE encoder vs from scratch, by share of labels: "
                + "; ".join(cells) + ".", ""]
    r = _read("ablation.json")
    if r:
        rows = r["summary"]
        out += [f"**Ablation** (`{r['command']}`): `fashion-small` variants, {r['epochs']} epochs on {r['train_images']:,} "
                f"images, seeds {r['seeds']}; mean (min-max) over the seeds.", "",
                "| variant | parameters | validation | test | test, patches shuffled |",
                "|---|---:|---:|---:|---:|"]
        for v, s in rows.items():
            out.append(f"| {v} | {s['parameters']:,} | {_summary(s['validation_accuracy'])} | "
                       f"{_summary(s['test_accuracy'])} | {_summary(s['shuffled_test_accuracy'])} |")
        out.append("")
    r = _read("data_curve.json")
    if r:
        out += [f"**ViT vs CNN, data-limited** (`{r['command']}`): {r['epochs']} epochs on each "
                f"class-balanced training set, no random shifts, seeds {r['seeds']}; mean "
                "(min-max) test accuracy.", "",
                "| training images | " + " | ".join(f"{n:,}" for n in r["sizes"]) + " |",
                "|---|" + "---:|" * len(r["sizes"])]
        sizes = sorted({x["train_images"] for x in r["runs"]})
        for kind, name in (("cnn", "small CNN"), ("vit", "small ViT")):
            out.append(f"| {name} | " + " | ".join(_summary(r["summary"][f"{kind} {n}"])
                                                   for n in sizes) + " |")
        shifted = {k: [x["shifted_test_accuracy"] for x in r["runs"]
                       if x["model"] == k and "shifted_test_accuracy" in x] for k in ("cnn", "vit")}
        cells = []
        for kind in ("cnn", "vit"):
            means = {s: sum(d[s] for d in shifted[kind]) / len(shifted[kind])
                     for s in shifted[kind][0]}
            cells.append(f"{kind.upper()} " + ", ".join(f"{s} px {a:.3f}" for s, a in means.items()))
        out += ["", "Shift test (the largest size's models, test images shifted right; mean over "
                "the seeds): " + "; ".join(cells) + ".", ""]
    seg, scratch = _read("vit_fashion_segment.json"), _read("vit_fashion_segment_scratch.json")
    if seg and scratch:
        out += [f"**Segmentation** (`{seg['command']}`; baseline `{scratch['command']}`): per-patch "
                f"accuracy {seg['test']['patch_accuracy']:.3f} and mean IoU "
                f"{seg['test']['mean_iou']:.3f} fine-tuned from the classifier, against "
                f"{scratch['test']['patch_accuracy']:.3f} / {scratch['test']['mean_iou']:.3f} from "
                "random weights with the same training.", ""]
    r = _read("recipe_choice.json")
    if r:
        cells = [f"{name}: validation {_summary(v['validation_accuracy'])}, test "
                 f"{_summary(v['test_accuracy'])}" for name, v in r["summary"].items()]
        out += [f"**Recipe, chosen on validation** (`{r['command']}`): `fashion-small`, "
                f"{r['epochs']} epochs, seeds {r['seeds']}, mean (min-max): " + "; ".join(cells)
                + f". Chosen: `{r['chosen']}`.", ""]
    r = _read("textures_finetune.json")
    if r:
        base = ", ".join(f"{k.replace('_', ' ')} {v:.3f}" for k, v in r["baselines"].items())
        out += [f"**Your own images: texture tiles** (`{r['command']}`): validation accuracy on "
                f"{r['validation_images']} tiles; logistic regressions on {base}; the ViT fine-tuned "
                f"from the classifier {_summary(r['summary']['pretrained'])}, from scratch "
                f"{_summary(r['summary']['scratch'])} (seeds {r['seeds']}).", ""]
    out += _beyond_classification()
    return "\n".join(out)


def _ms(s: dict) -> str:
    """Mean and spread of a summary: "mean ± std (min-max)" (std where the record has it)."""
    std = f" ± {s['std']:.3f}" if "std" in s else ""
    return f"{s['mean']:.3f}{std} ({s['min']:.3f}-{s['max']:.3f})"


def _beyond_classification() -> list[str]:
    """Notebooks 13-15: DETR, axial attention, Set Transformer, Image Transformer, VideoBERT."""
    out = []
    r = _read("detr_fashion.json")
    if r:
        t, base = r["test_summary"], r["baselines"]
        out += [f"**DETR on canvases of 1-3 items** (`{r['command']}`, notebook 13): "
                f"{r['recipe']['num_queries']} object queries, seeds {r['seeds']}; on "
                f"{r['recipe']['test_canvases']} test canvases, items found (right class, box IoU "
                f">= 0.5) {_summary(t['item_accuracy'])}, mean IoU of the located items "
                f"{_summary(t['mean_iou'])}; connected components + the classifier "
                f"{base['components']['test']['item_accuracy']:.3f}; one mean box of the commonest "
                f"class {base['floor']['test']['item_accuracy']:.3f}. Thresholds, smallest region "
                "and encoder chosen on the validation canvases.", ""]
    r = _read("axial_cost.json")
    if r:
        cross = r["analysis"].get("crossover", {})
        out += [f"**Axial against full attention, cost** (`{r['command']}`, notebook 14): "
                f"grids {r['config']['grids']}, dim {r['config']['dim']}, {r['config']['heads']} "
                f"heads, batch {r['config']['batch']}, on {_machine(r['machine'])} (load average "
                f"{r['load_average']['start'][0]:.1f} at the start). The smallest grid from which "
                "axial attention is cheaper (wall time / CPU time / XLA's temporary memory): "
                + "; ".join(f"{mode} {c.get('time')} / {c.get('cpu_time')} / {c.get('xla_memory')}"
                            for mode, c in cross.items() if isinstance(c, dict)) + ".", ""]
    r = _read("axial_segment.json")
    if r:
        s = r["summary"]
        cells = [f"{k} ({s[k]['parameters']:,} parameters) {_ms(s[k]['mean_iou'])}"
                 for k in ("full", "full2", "axial") if k in s]
        out += [f"**Axial attention in the segmenter** (`{r['command']}`, notebook 14): mean IoU "
                f"on {r['test_canvases']} test canvases, seeds {r['seeds']}: " + "; ".join(cells)
                + f"; all background {r['all_background']['mean_iou']:.3f}.", ""]
    r = _read("sets.json")
    if r:
        s, ref = r["summary"], r["references"]["test"]
        cells = [f"{k} ({v['parameters']:,} parameters, learning rate {v['peak_learning_rate']:g}) "
                 f"{_ms(v['test_accuracy'])}" for k, v in s.items()]
        out += [f"**Counting distinct classes in sets of 2-10 items** (`{r['command']}`, notebook "
                f"14): exact-count test accuracy, seeds {r['seeds']}: " + "; ".join(cells)
                + f"; classify each item then count {ref['classify_then_count']['accuracy']:.3f}; "
                f"the most frequent count {ref['most_frequent_count']['accuracy']:.3f}.", ""]
    r = _read("image_transformer.json")
    if r:
        b = r["baselines_test_bits_per_dim"]
        out += [f"**Image Transformer** (`{r['command']}`, notebook 15): "
                f"{r['settings']['levels']} grey levels, 14x14 pixels, seeds {r['seeds']}; test "
                f"bits per dimension {_summary(r['test_bits_per_dim'])} against the per-pixel "
                f"marginal {b['per_pixel_marginal']:.3f}, one marginal for all pixels "
                f"{b['global_marginal']:.3f}, uniform {b['uniform']:.3f}.", ""]
    r = _read("videobert.json")
    if r:
        b = r["baselines"]
        out += [f"**VideoBERT on toy clips** (`{r['command']}`, notebook 15): "
                f"{r['settings']['words']} visual words (k-means of the classifier's features), "
                f"seeds {r['seeds']}; masked-word test accuracy {_ms(r['test_accuracy'])} against "
                f"a table of the neighbours' words {b['neighbour_counts']['test_accuracy']:.3f}, "
                f"copying the previous frame {b['copy_previous_frame']['test_accuracy']:.3f}, the "
                f"most frequent word {b['most_frequent_word']['test_accuracy']:.3f}.", ""]
    return out
