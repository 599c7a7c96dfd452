"""Units (单位) over the API: admins register, rename and disable them; staff read them;
demo staff log in as members of a unit or a division."""

from __future__ import annotations

from sqlmodel import Session, select

from api.accounts import ensure_demo_accounts
from domain.catalogue import shipped_definitions
from models.tables import Unit, UserAccount
from services.units import unit_for
from tests.api.helpers import assert_error


async def test_an_admin_registers_a_department_unit_named_after_its_division(api, login):
    admin = await login("admin")

    created = await api.post("/units", json={"department": "police", "division_code": "330110"}, headers=admin)

    assert created.status_code == 201, created.text
    unit = created.json()
    assert unit["code"] == "police_330110"
    assert unit["name_zh"] == "杭州市余杭区公安分局"
    assert unit["division_name_zh"] == "浙江省杭州市余杭区"
    assert (unit["kind"], unit["department"], unit["active"], unit["window_zh"]) == ("department", "police", True, None)
    read = await api.get("/units/police_330110", headers=await login("police_officer"))
    assert read.status_code == 200 and read.json() == unit
    audit = (await api.get("/audit", params={"action": "unit_create"}, headers=admin)).json()["items"]
    assert [(row["actor"], row["target"], row["action_zh"]) for row in audit] == [
        ("admin", "police_330110", "新增单位")
    ]


async def test_an_institution_is_registered_with_its_own_code_and_name(api, login):
    body = {
        "department": "hospital",
        "division_code": "330102",
        "kind": "institution",
        "code": "hospital_330102_zjfy",
        "name_zh": "浙江大学医学院附属妇产科医院",
        "window_zh": "门诊一楼 出生一件事窗口",
    }

    response = await api.post("/units", json=body, headers=await login("admin"))

    assert response.status_code == 201, response.text
    unit = response.json()
    assert (unit["code"], unit["kind"], unit["name_zh"]) == (
        "hospital_330102_zjfy",
        "institution",
        "浙江大学医学院附属妇产科医院",
    )
    assert unit["division_name_zh"] == "浙江省杭州市上城区"


async def test_listing_by_division_covers_its_subtree(api, login):
    staff = await login("police_officer")

    hangzhou = await api.get("/units", params={"division": "330100", "department": "police"}, headers=staff)
    ningbo = await api.get("/units", params={"division": "330200"}, headers=staff)
    province = await api.get("/units", headers=await login("supervisor"))

    assert hangzhou.status_code == 200, hangzhou.text
    assert [item["code"] for item in hangzhou.json()["items"]] == ["police_330102", "police_330106"]  # 上城, 西湖
    assert hangzhou.json()["total"] == 2
    assert {item["division_code"] for item in ningbo.json()["items"]} == {"330203"}  # 海曙 only
    assert all(item["division_name_zh"] == "浙江省宁波市海曙区" for item in ningbo.json()["items"])
    assert province.json()["total"] == len(province.json()["items"]) > len(ningbo.json()["items"])


async def test_an_admin_renames_sets_the_window_and_disables_a_unit_which_stays(api, login, engine):
    admin = await login("admin")
    with Session(engine) as session:
        assert (unit := unit_for(session, "police", "330102")) is not None and unit.code == "police_330102"

    renamed = await api.patch(
        "/units/police_330102",
        json={"name_zh": "杭州市公安局上城区分局", "window_zh": "上城区市民之家 3 号窗口"},
        headers=admin,
    )
    disabled = await api.patch("/units/police_330102", json={"active": False}, headers=admin)
    cleared = await api.patch("/units/police_330102", json={"window_zh": None}, headers=admin)

    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name_zh"], renamed.json()["window_zh"]) == (
        "杭州市公安局上城区分局",
        "上城区市民之家 3 号窗口",
    )
    assert disabled.status_code == 200 and disabled.json()["active"] is False
    assert cleared.json()["window_zh"] is None and cleared.json()["name_zh"] == "杭州市公安局上城区分局"
    listed = await api.get("/units", params={"active": "false"}, headers=admin)
    assert [item["code"] for item in listed.json()["items"]] == ["police_330102"]
    assert (await api.get("/units/police_330102", headers=admin)).json()["active"] is False
    with Session(engine) as session:
        assert unit_for(session, "police", "330102") is None  # routing passes a disabled unit by
        member = session.get(UserAccount, "police_330102_officer")
        assert member is not None and member.unit_code == "police_330102"  # its members still point at it
    audit = (await api.get("/audit", params={"action": "unit_update"}, headers=admin)).json()["items"]
    assert [row["detail"] for row in audit] == [
        {"name_zh": ["杭州市上城区公安分局", "杭州市公安局上城区分局"], "window_zh": [None, "上城区市民之家 3 号窗口"]},
        {"active": [True, False]},
        {"window_zh": ["上城区市民之家 3 号窗口", None]},
    ]


async def test_only_admins_change_units_and_only_staff_read_them(api, login):
    body = {"department": "police", "division_code": "330110"}

    assert_error(await api.post("/units", json=body, headers=await login("police_officer")), 403, "forbidden")
    assert_error(await api.post("/units", json=body, headers=await login("supervisor")), 403, "forbidden")
    assert_error(
        await api.patch("/units/police_330102", json={"active": False}, headers=await login("hospital_clerk")),
        403,
        "forbidden",
    )
    assert_error(await api.get("/units", headers=await login("applicant1")), 403, "forbidden")
    assert_error(await api.get("/units"), 401, "unauthorized")
    assert (await api.get("/units/police_330102", headers=await login("hospital_clerk"))).status_code == 200


async def test_a_units_duty_phone_is_set_shown_changed_and_cleared(api, login):
    admin = await login("admin")
    body = {"department": "police", "division_code": "330110", "duty_phone": "13700009999"}

    created = await api.post("/units", json=body, headers=admin)
    changed = await api.patch("/units/police_330110", json={"duty_phone": "13700008888"}, headers=admin)
    cleared = await api.patch("/units/police_330110", json={"duty_phone": None}, headers=admin)

    assert created.status_code == 201, created.text
    assert created.json()["duty_phone"] == "13700009999"
    assert changed.status_code == 200 and changed.json()["duty_phone"] == "13700008888"
    assert cleared.status_code == 200 and cleared.json()["duty_phone"] is None
    assert (await api.get("/units/police_330110", headers=admin)).json()["duty_phone"] is None
    without = await api.post("/units", json={"department": "police", "division_code": "330108"}, headers=admin)
    assert without.status_code == 201 and without.json()["duty_phone"] is None


async def test_a_bad_duty_phone_is_refused_naming_the_field(api, login, engine):
    admin = await login("admin")
    with Session(engine) as session:
        demo = session.get(Unit, "police_330102")
        assert demo is not None and demo.duty_phone is not None  # the demo units have one
        demo_phone = demo.duty_phone

    for phone in ("12345", "23700001234", "137000012345", "1370000123x"):
        body = {"department": "police", "division_code": "330110", "duty_phone": phone}
        created = await api.post("/units", json=body, headers=admin)
        assert "11 位" in assert_error(created, 422, "validation_error", ["duty_phone"])["fields"]["duty_phone"]
    patched = await api.patch("/units/police_330102", json={"duty_phone": "0571-1234567"}, headers=admin)
    too_long = await api.patch("/units/police_330102", json={"duty_phone": "1" * 21}, headers=admin)

    assert_error(patched, 422, "validation_error", ["duty_phone"])
    assert_error(too_long, 422, "validation_error", ["duty_phone"])
    with Session(engine) as session:
        assert session.get(Unit, "police_330110") is None
        kept = session.get(Unit, "police_330102")
        assert kept is not None and kept.duty_phone == demo_phone  # unchanged


async def test_refusals_name_the_field_and_keep_the_one_error_shape(api, login):
    admin = await login("admin")

    retired = await api.post("/units", json={"department": "police", "division_code": "330103"}, headers=admin)
    unknown = await api.post("/units", json={"department": "mars", "division_code": "330102"}, headers=admin)
    taken = await api.post("/units", json={"department": "police", "division_code": "330102"}, headers=admin)
    missing = await api.get("/units/police_999999", headers=admin)
    missing_patch = await api.patch("/units/police_999999", json={"active": False}, headers=admin)
    bad_filter = await api.get("/units", params={"division": "330103"}, headers=admin)
    no_name = await api.patch("/units/police_330102", json={"name_zh": None}, headers=admin)

    error = assert_error(retired, 422, "validation_error", ["division_code"])
    assert "330105" in error["fields"]["division_code"]  # domain/divisions' reason: the successor
    assert "division_code" not in assert_error(unknown, 422, "validation_error", ["department"])["fields"]
    assert_error(taken, 409, "conflict")
    assert_error(missing, 404, "not_found")
    assert_error(missing_patch, 404, "not_found")
    assert_error(bad_filter, 422, "validation_error", ["division"])
    assert_error(no_name, 422, "validation_error", ["name_zh"])


async def test_login_carries_the_unit_of_a_county_officer_and_the_division_of_a_city_supervisor(api, login):
    async def me(username: str) -> dict[str, str | None]:
        response = await api.get("/auth/me", headers=await login(username))
        assert response.status_code == 200, response.text
        body: dict[str, str | None] = response.json()
        return body

    ningbo_police = await me("police_330203_officer")
    assert (ningbo_police["unit"], ningbo_police["unit_code"]) == ("police", "police_330203")
    assert (await me("supervisor_3301"))["division_code"] == "330100"
    assert (await me("supervisor_3302"))["division_code"] == "330200"
    assert (await me("supervisor"))["division_code"] is None  # the whole province
    first = await me("police_officer")  # the first demo accounts are members of the 上城区 unit
    assert (first["unit"], first["unit_code"]) == ("police", "police_330102")
    assert (await me("hospital_clerk"))["unit_code"] == "hospital_330102_fybj"


async def test_demo_seeding_is_idempotent_and_keeps_what_an_admin_changed(api, login, engine, api_settings):
    await api.patch("/units/police_330106", json={"name_zh": "西湖分局"}, headers=await login("admin"))
    with Session(engine) as session:
        units_before = len(session.exec(select(Unit)).all())
        accounts_before = len(session.exec(select(UserAccount)).all())
        # A dev database from before units: its demo accounts have no unit yet.
        account = session.get(UserAccount, "police_officer")
        assert account is not None
        account.unit_code = None
        session.add(account)
        session.commit()

    ensure_demo_accounts(engine, list(shipped_definitions().values()), secret=api_settings.secret_key)

    with Session(engine) as session:
        assert len(session.exec(select(Unit)).all()) == units_before
        assert len(session.exec(select(UserAccount)).all()) == accounts_before
        renamed = session.get(Unit, "police_330106")
        assert renamed is not None and renamed.name_zh == "西湖分局"
        account = session.get(UserAccount, "police_officer")
        assert account is not None and (account.unit, account.unit_code) == ("police", "police_330102")
