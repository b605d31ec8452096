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
