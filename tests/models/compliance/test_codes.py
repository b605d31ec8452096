from models.compliance.codes import (
    RULE_LABELS,
    RULE_SEEDS,
    SUBJECT_LABELS,
    VIOLATION_STATE_LABELS,
    SubjectType,
    ViolationRule,
    ViolationState,
    rule_label,
)


def test_every_rule_has_a_chinese_label_and_a_seed() -> None:
    for rule in ViolationRule:
        assert RULE_LABELS[rule] and not RULE_LABELS[rule].isascii()
        assert RULE_SEEDS[rule]
    assert set(VIOLATION_STATE_LABELS) == set(ViolationState)
    assert set(SUBJECT_LABELS) == set(SubjectType)


def test_rule_labels_are_distinct() -> None:
    assert len(set(RULE_LABELS.values())) == len(RULE_LABELS)
    assert rule_label("late_delivery") == "超时配送"


def test_every_rule_state_and_audit_action_of_the_pass_has_its_label_in_the_one_catalog() -> None:
    from models.labels import AUDIT_ACTION_LABELS, VIOLATION_LABELS
    from models.labels import VIOLATION_STATE_LABELS as state_words
    from tasks.compliance.reconcile import CLOSED, OPENED

    assert set(VIOLATION_LABELS) == {r.value for r in ViolationRule}
    assert set(state_words) == {s.value for s in ViolationState}
    assert {OPENED, CLOSED} <= set(AUDIT_ACTION_LABELS)
    for word in [*VIOLATION_LABELS.values(), *state_words.values(), *AUDIT_ACTION_LABELS.values()]:
        assert not word.isascii()
