import json
from tests.api.helpers import events_of, result_for


async def test_probe_flows(api, login, cases, engine):
    c = await cases.submit()
    cid = c["case_id"]
    await cases.claim(c, "birth_certificate")
    r = await cases.act("return", cid, "birth_certificate", as_user="hospital_officer", body={"missing": ["birth_record"], "reason": "模糊"})
    print("return", r.status_code, r.text[:300])
    print((await cases.read(cid))["status"], (await cases.read(cid))["missing_materials"])
    h = await login("applicant1")
    r = await api.post(f"/cases/{cid}/supplements", json={"materials": {"other": "x"}}, headers=h)
    print("supp bad", r.status_code, r.text)
    r = await api.post(f"/cases/{cid}/supplements", json={"materials": {"birth_record": "UP-1"}}, headers=h)
    print("supp ok", r.status_code, r.json()["status"], [ (s["step"], s["status"]) for s in r.json()["steps"]])
    r = await api.post(f"/cases/{cid}/supplements", json={"materials": {"birth_record": "UP-1"}}, headers=h)
    print("supp again", r.status_code, r.text)
    # refuse
    r = await cases.act("refuse", cid, "birth_certificate", as_user="hospital_officer", body={"reason": "不符合"})
    print("refuse", r.status_code, r.text[:200])
    x = await cases.read(cid)
    print(x["status"], [(s["step"], s["status"]) for s in x["steps"]])
    r = await cases.act("claim", cid, "vaccination_certificate", as_user="hospital_officer")
    print("after close", r.status_code, r.text)


async def test_probe_last(api, login, cases, engine):
    c = await cases.submit(as_user="hospital_clerk")
    print("clerk notice", c["acceptance_notice"]["accepting_staff"])
    cid = c["case_id"]
    for s in ["birth_certificate", "vaccination_certificate", "hukou_registration", "medical_insurance_enrollment", "maternity_benefit_review", "social_security_card"]:
        await cases.complete(c, s)
    await cases.claim(c, "delivery", "hospital_clerk")
    body = {"result": result_for("delivery", c["_form"])}
    r1 = await cases.act("complete", cid, "delivery", as_user="hospital_clerk", body=body, key="K")
    r2 = await cases.act("complete", cid, "delivery", as_user="hospital_clerk", body=body, key="K")
    print("last idem", r1.status_code, r2.status_code, r2.text[:200])
    t = await api.get(f"/cases/{cid}/timeline", headers=await login("supervisor"))
    print(json.dumps(t.json()["events"], ensure_ascii=False)[:3000])
    print((await cases.read(cid))["status"])
