"""Paper scale on tiny fakes: HF LM and vision encoder folders, a tiny LLaVA and a fake COCO; missing paths."""
import json

import numpy as np
import pytest
import torch

from shared.errors import MissingInputError, ParameterError
from shared.papers.projector_alignment import backbones as bb
from shared.papers.projector_alignment import experiments as ex
from shared.papers.projector_alignment import scenes as sc

WORDS = sc.VOCAB + ["person", "dog", "cat", "<unk>", "<image>"]


def word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
                                   unk_token="<unk>")


def llama_config(**kw):
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64, **kw)


@pytest.fixture
def lm_dir(tmp_path):
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    folder = tmp_path / "lm"
    LlamaForCausalLM(llama_config()).save_pretrained(folder)
    word_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture
def vision_dir(tmp_path):
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    folder = tmp_path / "vit"
    ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                       intermediate_size=32), add_pooling_layer=False).save_pretrained(folder)
    return folder


def test_missing_paths_name_their_parameter(tmp_path):
    with pytest.raises(MissingInputError, match="lm_dir"):
        bb.hf_backbone(str(tmp_path / "nope"), "cpu", torch.float32)
    with pytest.raises(MissingInputError, match="vision_dir"):
        bb.HFPatchEncoder(str(tmp_path))
    with pytest.raises(MissingInputError, match="llava_dir"):
        bb.llava_coco_analysis("", str(tmp_path), 2, "cpu", torch.float32)
    with pytest.raises(MissingInputError, match="coco_dir"):
        bb.load_coco(str(tmp_path), 2)
    with pytest.raises(ParameterError, match="backbone"):
        bb.check_backbone("clip")


def test_smollm2_style_backbone_and_vision_encoder(lm_dir, vision_dir):
    backbone = bb.hf_backbone(str(lm_dir), "cpu", torch.float32)
    assert backbone.word_ids.tolist()[5:] == [WORDS.index(w) for w in sc.VOCAB[5:]]
    enc = bb.HFPatchEncoder(str(vision_dir))
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 784)).astype(np.float32), np.arange(40) % 10
    out = ex.run_arms(backbone, enc, X, y, np.arange(30), np.arange(30, 40), [0, 1], 2, 8, 2, seed=0, batch=4,
                      log_every=1)
    assert out["V_eval"].shape == (2, 16, 16)
    assert all(np.isfinite(v) for m in out["metrics"].values() for v in m.values())


def test_patch_labels_from_a_polygon():
    square = {"segmentation": [[0, 0, 50, 0, 50, 50, 0, 50]], "category_id": 7}
    labels, cats = bb.patch_labels([square], width=100, height=100, grid=4)
    assert cats == [7]
    assert labels.reshape(4, 4)[:2, :2].tolist() == [[0, 0], [0, 0]] and (labels.reshape(4, 4)[2:] == -1).all()


@pytest.fixture
def llava_and_coco(tmp_path):
    from PIL import Image
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration

    torch.manual_seed(0)
    vision = CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                              num_attention_heads=2, projection_dim=16)
    config = LlavaConfig(vision_config=vision, text_config=llama_config(), image_token_index=len(WORDS) - 1,
                         vision_feature_layer=-2, projector_hidden_act="gelu")
    llava = tmp_path / "llava"
    LlavaForConditionalGeneration(config).save_pretrained(llava)
    word_tokenizer().save_pretrained(llava)
    (llava / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5] * 3, "image_std": [0.5] * 3}))
    coco = tmp_path / "coco"
    (coco / "val2017").mkdir(parents=True)
    (coco / "annotations").mkdir()
    images, anns = [], []
    for i in range(2):
        Image.fromarray((np.random.default_rng(i).random((40, 60, 3)) * 255).astype(np.uint8)).save(
            coco / "val2017" / f"{i:012d}.jpg")
        images.append({"id": i, "file_name": f"{i:012d}.jpg", "width": 60, "height": 40})
        anns.append({"id": 10 + i, "image_id": i, "category_id": 1, "iscrowd": 0,
                     "segmentation": [[0, 0, 40, 0, 40, 30, 0, 30]]})
        anns.append({"id": 20 + i, "image_id": i, "category_id": 18, "iscrowd": 0,
                     "segmentation": [[40, 20, 60, 20, 60, 40, 40, 40]]})
    (coco / "annotations/instances_val2017.json").write_text(json.dumps(
        {"images": images, "annotations": anns,
         "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 17, "name": "cat"}]}))
    return llava, coco


def test_llava_coco_analysis_on_tiny_fakes(llava_and_coco):
    llava, coco = llava_and_coco
    out = bb.llava_coco_analysis(str(llava), str(coco), 2, "cpu", torch.float32)
    assert out["n_images"] == 2 and out["labelled_patches"] > 0
    assert all(np.isfinite(v) for v in out.values()), out
