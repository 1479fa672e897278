"""The core's bookkeeping is the runner's (``cotgap.pipeline.bookkeeping``): a plugin holding ``ctx``
cannot widen what the core evaluates as the distilled student, nor change what it records."""

from __future__ import annotations

import pytest

from cotgap import ProtocolError, Strategy

SEEN: dict = {}


class Widen(Strategy):
    """Trains the student with ``train_model`` (the student's architecture and size, in a folder of
    its own choosing) after trying every public handle the context offers on the core's state."""

    name = "widen"

    def train(self, ctx, data):
        public = {n: getattr(ctx, n) for n in dir(ctx) if not n.startswith("_")}
        SEEN["collections"] = sorted(n for n, v in public.items() if isinstance(v, (set, list, dict)) and n != "params")
        ctx.teachers.append(ctx.student)
        ctx.config.training.epochs = 99
        SEEN["after"] = (len(ctx.teachers), ctx.training_config().epochs)
        SEEN["run"] = sorted(n for n in dir(ctx.run) if not n.startswith("_"))
        SEEN["compute"] = sorted(n for n in dir(ctx.compute) if not n.startswith("_"))
        out = ctx.workdir("widen") / "impostor"
        SEEN["out"] = out
        return ctx.train_model(ctx.student, [r for v in data.values() for r in v], out)


def test_a_plugin_cannot_add_a_folder_to_what_the_core_evaluates(cotgap_run):
    SEEN.clear()
    with pytest.raises(ProtocolError, match="did not write; only the student fine-tuned"):
        cotgap_run(Widen(), limit=4)
    assert {k: v for k, v in SEEN.items() if k != "out"} == {
        "collections": ["teachers"],  # no set or ledger of the core's among them
        "after": (1, 1),  # the teachers and config handed out are copies
        "run": ["path"],  # the run directory's place, not its stages or lock
        "compute": ["add", "running", "watch"],  # counts are added, never taken
    }
    assert (SEEN["out"] / "model").is_dir()  # trained, and still refused


def test_train_student_is_what_the_core_accepts(cotgap_run):
    from cotgap.pipeline.bookkeeping import RunBook

    book = RunBook()
    assert not book.is_student("somewhere")
    book.accept_student("somewhere/../somewhere")
    assert book.is_student("somewhere")  # folders compared resolved
    report = cotgap_run(type("Reference", (Strategy,), {"name": "reference"})(), limit=4)  # ctx.train_student: accepted
    assert report["distilled"]["n"] > 0
