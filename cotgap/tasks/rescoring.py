"""Score a stored response again with its task's own scoring: the task YAML's filter pipeline
(``robust_filter`` / ``math_answers`` through lm-eval's ``FilterEnsemble``) and the task's metric
(``process_results``), exactly as ``evaluation.run`` scored it when it was generated.

A record read back from a file (the shared generation cache) is never believed about its own
``correct`` flag: the flag is a function of the task, the question and the response, so it is
computed again from them here.
"""

from __future__ import annotations

from cotgap.errors import UserError


def score_responses(task, scoring: str, items: list[tuple[dict, str]]) -> list[tuple[str, bool]]:
    """``(answer, correct)`` for each ``(doc, response)`` of ``task`` under the filter ``scoring``:
    the filter's output (what ``evaluation.run`` stores as ``answer``) and the metric's verdict."""
    from lm_eval.api.instance import Instance

    ensemble = next((f for f in getattr(task, "_filters", []) if f.name == scoring), None)
    if ensemble is None:
        raise UserError(f"task {task.config.task} has no filter named {scoring!r}")
    if not items:
        return []
    instances = []
    for i, (doc, response) in enumerate(items):
        inst = Instance(request_type="generate_until", doc=doc, arguments=("", {}), idx=0, doc_id=i)
        inst.resps = [response]
        instances.append(inst)
    ensemble.apply(instances)
    out = []
    for inst in instances:
        answer = inst.filtered_resps[scoring]
        metrics = task.process_results(inst.doc, [answer])
        out.append((answer, bool(metrics.get("exact_match"))))
    return out
