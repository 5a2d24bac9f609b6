"""Save a role whose SFT was cut off (a device-time limit) from its last multimodal checkpoint,
as an ordinary model directory `<role>_partial` marked partial; a finished role is left alone.

python research/teacher_gpu/salvage.py --zoo ZOO --config CONFIG --role ROLE
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml
from transformers import AutoTokenizer

from iapo.models.build import build_model, make_processor, save
from iapo.store import RunDir, ZooDir
from iapo.supervised.zoo import ZooConfig


def main() -> None:
    ap = argparse.ArgumentParser(description="save a cut-off role's last multimodal checkpoint as <role>_partial")
    ap.add_argument("--zoo", type=Path, required=True)
    ap.add_argument("--config", type=Path, required=True, help="the zoo config the role was built with")
    ap.add_argument("--role", required=True)
    a = ap.parse_args()
    zoo, cfg_path, role = a.zoo, a.config, a.role
    if (ZooDir(zoo).role(role) / "config.json").exists():
        return print(f"{role}: finished")
    ckpt = RunDir(ZooDir(zoo).stage(role) / "multimodal").checkpoint
    if not ckpt.exists():
        return print(f"{role}: no multimodal checkpoint yet, nothing to save")
    rc = ZooConfig.model_validate(yaml.safe_load(cfg_path.read_text())).roles[role]
    processor = make_processor(AutoTokenizer.from_pretrained(zoo / "tokenizers" / rc.tokenizer), rc.spec)
    model = build_model(rc.spec, processor)
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    meta = {"role": role, "partial": True, "multimodal_steps": state["step"], "spec": rc.spec.model_dump()}
    save(model, processor, zoo / f"{role}_partial", meta)
    print(f"{role}: saved the checkpoint of multimodal step {state['step']} as {role}_partial")


if __name__ == "__main__":
    main()
