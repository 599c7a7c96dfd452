"""Masking personal data (domain/redaction.py): text and payloads by shape, who reads
them in full, and the log filter installed by the worker, the CLI and the API."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from temporalio.client import Client

import cli
import worker
from api.main import create_app
from domain.redaction import (
    PersonalDataFilter,
    install_log_redaction,
    mask_name,
    mask_personal_data,
    mask_text,
    sees_case_personal_data,
    sees_complaint_personal_data,
)
from models.case import Actor, CaseSnapshot, CaseStatus, StepStatus, StepView
from models.complaint import ComplaintSnapshot, ComplaintStatus
from tests.conftest import test_settings as settings_for

MOTHER_ID = "330102199003070027"
ID_WITH_X = "33011019751020019X"
PHONE = "13800001234"


@pytest.fixture
def clean_logging() -> Iterator[None]:
    """Each test starts without the masking factory and filters, and leaves none behind."""
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    yield
    logging.setLogRecordFactory(factory)
    for logger in [logging.getLogger(), *logging.root.manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger):
            for handler in logger.handlers:
                for existing in [f for f in handler.filters if isinstance(f, PersonalDataFilter)]:
                    handler.removeFilter(existing)


def _capturing_logger(name: str, with_filter: bool) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    if with_filter:
        handler.addFilter(PersonalDataFilter())
    logger = logging.getLogger(name)
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


# --- text and payloads -------------------------------------------------------------------------


def test_an_id_number_keeps_its_division_code_and_last_four_characters():
    assert mask_text(f"母亲身份证{MOTHER_ID}。") == "母亲身份证330102********0027。"
    assert mask_text(f"id={ID_WITH_X.lower()}") == "id=330110********019X"


def test_mobile_numbers_keep_their_first_three_and_last_four_digits_with_any_separators():
    assert mask_text(f"请回电{PHONE}") == "请回电138****1234"
    assert mask_text("+86 138-0000-1234 或 138 0000 1234") == "+86 138****1234 或 138****1234"


def test_landlines_keep_their_area_code_and_last_four_digits():
    assert mask_text("座机0571-87654321") == "座机0571-****4321"


@pytest.mark.parametrize(
    "text",
    [
        "ot-13800001234abcdef01",  # a case id whose hex happens to start like a phone
        "ot-12345678901234567890:birth_certificate",
        "X330102001",
        "户号330102012345第3页",
        "K33010200123",
        "2026-11-20T08:30:00+08:00",
        "YB-330100-88001",
        "15230.50",
        "12345",
        "330102********0027",  # masking twice changes nothing
    ],
)
def test_identifiers_amounts_and_times_are_left_alone(text):
    assert mask_text(text) == text


def test_a_payload_is_masked_at_every_depth_and_keeps_its_keys_and_other_values():
    payload = {
        "result": {"citizen_id_number": MOTHER_ID, "booklet_page": "户号330102012345第3页"},
        "events": [{"detail": {"reason": f"电话{PHONE}打不通"}, "seq": 3}],
        "when": datetime(2026, 11, 20, tzinfo=UTC),
        "pair": (PHONE, 1),
    }

    assert mask_personal_data(payload) == {
        "result": {"citizen_id_number": "330102********0027", "booklet_page": "户号330102012345第3页"},
        "events": [{"detail": {"reason": "电话138****1234打不通"}, "seq": 3}],
        "when": datetime(2026, 11, 20, tzinfo=UTC),
        "pair": ("138****1234", 1),
    }


@pytest.mark.parametrize(
    "typed",
    [
        "身份证３３０１０２１９９００３０７００２７",  # full-width digits, as Chinese input methods type them
        "身份证330102 19900307 0027",  # split after the division code and the birth date
        "身份证330102-19900307-0027",
        "身份证 id330102199003070027",  # glued to letters
    ],
)
def test_an_id_number_is_masked_however_a_person_typed_it(typed):
    assert mask_text(typed).endswith("330102********0027")
    assert "19900307" not in mask_text(typed)


def test_a_full_width_mobile_number_is_masked():
    assert mask_text("请回电１３８００００１２３４") == "请回电138****1234"


def test_our_case_ids_and_file_hashes_stay_whole_even_when_they_hold_eighteen_digits():
    text = "ot-33010219900307002700 sha256:" + "330102199003070027" * 3 + "3301021990"
    assert mask_text(text) == text


def test_a_persons_name_is_masked_to_its_first_character_and_an_enterprises_is_not():
    payload = {
        "applicant": {"name": "李芳", "id_number": MOTHER_ID, "relation": "mother"},
        "newborn": {"name": "王小明", "sex": "male"},  # a person before 户口登记 gives them a number
        "enterprise": {"name": "杭州示例科技有限公司", "credit_code": "91330100MA2XXXXX0X"},
        "bank_account": {"holder": "欧阳小明", "bank_name": "中国农业银行"},
    }

    masked_payload = mask_personal_data(payload)

    assert masked_payload["applicant"] == {"name": "李*", "id_number": "330102********0027", "relation": "mother"}
    assert masked_payload["newborn"] == {"name": "王**", "sex": "male"}
    assert masked_payload["enterprise"]["name"] == "杭州示例科技有限公司"
    assert masked_payload["bank_account"]["holder"] == "欧***"
    assert mask_name("李*") == "李*"  # masking twice changes nothing


# --- who reads personal data in full --------------------------------------------------------------


def _step(code: str, department: str, status: StepStatus, opened: bool = True) -> StepView:
    return StepView(
        step=code,
        name_zh=code,
        department=department,
        department_zh=department,
        status=status,
        status_zh=status.value,
        time_limit_working_days=1,
        opened_at=datetime(2026, 11, 20, tzinfo=UTC) if opened else None,
    )


CASE = CaseSnapshot(
    case_id="ot-00000000000000000001",
    thing="birth",
    thing_zh="出生一件事",
    catalogue_version=1,
    channel="hospital",
    status=CaseStatus.IN_PROGRESS,
    status_zh="办理中",
    submitted_at=datetime(2026, 11, 20, tzinfo=UTC),
    owner="applicant1",
    submitted_by="applicant1",
    accepting_unit="hospital",
    steps=[
        _step("birth_certificate", "hospital", StepStatus.DONE),
        _step("hukou_registration", "police", StepStatus.CLAIMED),
        _step("social_security_card", "hr_social_security", StepStatus.PENDING, opened=False),
    ],
)


@pytest.mark.parametrize(
    ("actor", "full"),
    [
        (Actor(username="applicant1", role="applicant"), True),
        (Actor(username="applicant2", role="applicant"), False),
        (Actor(username="hospital_clerk", role="clerk", unit="hospital"), True),
        (Actor(username="service_center_clerk", role="clerk", unit="service_center"), False),
        (Actor(username="hospital_officer", role="officer", unit="hospital"), True),
        (Actor(username="police_officer", role="officer", unit="police"), True),
        (Actor(username="hr_social_security_officer", role="officer", unit="hr_social_security"), False),
        (Actor(username="supervisor", role="supervisor", unit="supervision"), False),
        (Actor(username="admin", role="admin"), False),
    ],
    ids=lambda value: value.username if isinstance(value, Actor) else str(value),
)
def test_a_case_is_read_in_full_only_by_its_applicant_accepting_unit_and_opened_departments(actor, full):
    assert sees_case_personal_data(actor, CASE) is full


def test_a_department_whose_step_was_cancelled_before_it_opened_reads_the_case_masked():
    refused = CASE.model_copy(
        update={
            "steps": [
                *CASE.steps[:2],
                _step("social_security_card", "hr_social_security", StepStatus.CANCELLED, opened=False),
            ]
        }
    )

    assert not sees_case_personal_data(
        Actor(username="hr_social_security_officer", role="officer", unit="hr_social_security"), refused
    )


def test_the_clerk_who_submitted_a_case_reads_it_in_full():
    window = CASE.model_copy(update={"owner": None, "submitted_by": "service_center_clerk", "accepting_unit": None})

    assert sees_case_personal_data(Actor(username="service_center_clerk", role="clerk", unit="service_center"), window)


@pytest.mark.parametrize(
    ("actor", "full"),
    [
        (Actor(username="applicant1", role="applicant"), True),
        (Actor(username="applicant2", role="applicant"), False),
        (Actor(username="hospital_clerk", role="clerk", unit="hospital"), False),
        (Actor(username="hospital_officer", role="officer", unit="hospital"), True),
        (Actor(username="police_officer", role="officer", unit="police"), False),
        (Actor(username="supervisor", role="supervisor", unit="supervision"), False),
        (Actor(username="admin", role="admin"), False),
    ],
    ids=lambda value: value.username if isinstance(value, Actor) else str(value),
)
def test_a_complaint_is_read_in_full_by_the_complainant_and_the_answering_department(actor, full):
    complaint = ComplaintSnapshot(
        complaint_id="cp-00000000000000000001",
        case_id=CASE.case_id,
        step="birth_certificate",
        named_department="hospital",
        department="hospital",
        department_zh="医院",
        assigned_department="hospital",
        status=ComplaintStatus.ASSIGNED,
        status_zh="已分派",
        complainant="applicant1",
        filed_by="applicant1",
        content=f"请回电{PHONE}",
        filed_at=datetime(2026, 11, 20, tzinfo=UTC),
    )

    assert sees_complaint_personal_data(actor, complaint) is full


# --- logs ---------------------------------------------------------------------------------------------


def test_the_log_filter_masks_the_message_and_its_arguments(clean_logging):
    logger, stream = _capturing_logger("onething.test.filter", with_filter=True)

    logger.info(f"applicant {MOTHER_ID} called")
    logger.warning("form %s phone %s", {"id_number": MOTHER_ID}, PHONE)

    output = stream.getvalue()
    assert MOTHER_ID not in output and PHONE not in output
    assert "applicant 330102********0027 called" in output
    assert "form {'id_number': '330102********0027'} phone 138****1234" in output


def test_the_log_filter_masks_an_exceptions_text(clean_logging):
    logger, stream = _capturing_logger("onething.test.exception", with_filter=True)

    try:
        raise ValueError(f"bad id_number {MOTHER_ID}")
    except ValueError:
        logger.exception("form rejected")

    output = stream.getvalue()
    assert "ValueError: bad id_number 330102********0027" in output
    assert MOTHER_ID not in output


def test_without_the_filter_the_same_record_would_leak(clean_logging):
    # The control for the tests above: the handler alone writes what it is given.
    logger, stream = _capturing_logger("onething.test.control", with_filter=False)

    logger.info("phone %s", PHONE)

    assert PHONE in stream.getvalue()


def test_once_installed_records_are_masked_even_for_handlers_added_later(clean_logging):
    install_log_redaction()
    logger, stream = _capturing_logger("onething.test.later", with_filter=False)

    logger.info("mother %s phone %s", MOTHER_ID, PHONE)

    assert stream.getvalue().strip() == "mother 330102********0027 phone 138****1234"


def test_install_puts_the_filter_on_existing_handlers_including_non_propagating_ones(clean_logging):
    _, stream = _capturing_logger("uvicorn.test-access", with_filter=False)
    handler = logging.getLogger("uvicorn.test-access").handlers[0]

    install_log_redaction()
    install_log_redaction()  # twice: still one filter

    assert sum(isinstance(f, PersonalDataFilter) for f in handler.filters) == 1
    record = logging.LogRecord("uvicorn.test-access", logging.INFO, __file__, 1, "GET /x?id=%s", (MOTHER_ID,), None)
    handler.handle(record)
    assert stream.getvalue().strip() == "GET /x?id=330102********0027"


def _leaks(caplog: pytest.LogCaptureFixture) -> str:
    logging.getLogger("onething.test.process").warning("phone %s id %s", PHONE, MOTHER_ID)
    return caplog.records[-1].getMessage()


def test_the_worker_installs_the_filter_where_it_configures_logging(clean_logging, monkeypatch, caplog, tmp_path):
    async def no_worker(settings: Any) -> None:
        return None

    monkeypatch.setattr(worker, "get_settings", lambda: settings_for(tmp_path))
    monkeypatch.setattr(worker, "run_worker", no_worker)
    assert PHONE in _leaks(caplog)

    worker.main()

    assert _leaks(caplog) == "phone 138****1234 id 330102********0027"


def test_the_cli_installs_the_filter_where_it_configures_logging(clean_logging, caplog, capsys):
    assert PHONE in _leaks(caplog)
    birth = Path(__file__).resolve().parent.parent / "domain" / "things" / "birth.yaml"

    assert cli.main(["catalogue", "validate", str(birth)]) == 0

    assert _leaks(caplog) == "phone 138****1234 id 330102********0027"


def test_the_api_installs_the_filter_when_it_starts(clean_logging, caplog, tmp_path):
    settings = settings_for(tmp_path)
    app = create_app(settings, temporal_client=cast(Client, object()))
    assert PHONE in _leaks(caplog)

    async def start_and_stop() -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(start_and_stop())

    assert _leaks(caplog) == "phone 138****1234 id 330102********0027"
