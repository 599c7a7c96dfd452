"""The complaint's rules on their own, without Temporal: who may assign, answer and close, and when."""

from __future__ import annotations

from datetime import datetime

import pytest

from domain.workcalendar import SHANGHAI
from models.case import Actor
from models.complaint import (
    AnswerComplaintInput,
    AssignComplaintInput,
    CloseComplaintInput,
    ComplaintInput,
    ComplaintStatus,
)
from models.errors import DomainError, ErrorCode
from workflows.complaint.state import ComplaintState

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI)
SUPERVISOR = Actor(username="supervisor", role="supervisor", unit="supervision")
POLICE = Actor(username="police_officer", role="officer", unit="police")
HOSPITAL = Actor(username="hospital_officer", role="officer", unit="hospital")


def accepted() -> ComplaintState:
    complaint = ComplaintInput(
        complaint_id="cp-test",
        content="办理太慢，请督促",
        filed_by=Actor(username="applicant1", role="applicant"),
        complainant="applicant1",
        department="hospital",
        assignable=["hospital", "police"],
    )
    state = ComplaintState(complaint)
    state.accepted = True
    return state


def refusal(call, *arguments) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call(*arguments)
    return caught.value


def test_only_a_supervisor_assigns_and_only_to_a_department_that_answers_complaints():
    state = accepted()
    assert refusal(state.check_assign, AssignComplaintInput(actor=POLICE, department="police")).code == (
        ErrorCode.FORBIDDEN
    )
    error = refusal(state.check_assign, AssignComplaintInput(actor=SUPERVISOR, department="bank"))
    assert (error.code, set(error.fields)) == (ErrorCode.INVALID, {"department"})
    state.check_assign(AssignComplaintInput(actor=SUPERVISOR, department="police"))


def test_the_department_owing_the_answer_is_the_assigned_one_else_the_one_complained_about():
    state = accepted()
    assert state.department() == "hospital"
    state.assign(AssignComplaintInput(actor=SUPERVISOR, department="police", note="请核查"), NOW)
    assert (state.department(), state.status, state.assign_note) == ("police", ComplaintStatus.ASSIGNED, "请核查")


def test_only_the_assigned_departments_officer_answers_and_only_once_assigned():
    state = accepted()
    answer = AnswerComplaintInput(actor=POLICE, answer="已核查并答复")
    assert refusal(state.check_answer, answer).code == ErrorCode.CONFLICT  # not assigned yet
    state.assign(AssignComplaintInput(actor=SUPERVISOR, department="police"), NOW)
    other = AnswerComplaintInput(actor=HOSPITAL, answer="已核查并答复")
    assert refusal(state.check_answer, other).code == ErrorCode.FORBIDDEN
    assert set(refusal(state.check_answer, AnswerComplaintInput(actor=POLICE, answer=" ")).fields) == {"answer"}
    state.check_answer(answer)
    state.record_answer(answer, NOW)
    assert (state.status, state.answered_by, state.unanswered()) == (ComplaintStatus.ANSWERED, "police_officer", False)


def test_a_complaint_is_closed_only_after_its_answer():
    state = accepted()
    close = CloseComplaintInput(actor=SUPERVISOR, satisfied=True)
    assert "尚未分派" in refusal(state.check_close, close).message
    state.assign(AssignComplaintInput(actor=SUPERVISOR, department="police"), NOW)
    state.record_answer(AnswerComplaintInput(actor=POLICE, answer="已答复"), NOW)
    state.check_close(close)
    state.close(close, NOW)
    assert state.snapshot(now=NOW, revision=3).status_zh == "已办结"
