from models.catalogue import shipped_definitions
from models.samples import sample_birth_form, sample_result


async def test_api_smoke(api, login):
    d = shipped_definitions()["birth"]
    form = sample_birth_form()
    r = await api.post("/cases", json={"thing": "birth", "channel": "hospital", "form": form}, headers=await login("applicant1"))
    assert r.status_code == 201, r.text
    case_id = r.json()["case_id"]
    for step in ["birth_certificate", "vaccination_certificate", "hukou_registration", "medical_insurance_enrollment", "maternity_benefit_review", "social_security_card", "delivery"]:
        dept = d.step(step).department_for("hospital")
        h = await login(f"{dept}_officer")
        inbox = await api.get("/tasks", headers=h)
        assert inbox.status_code == 200, inbox.text
        ids = [t["task_id"] for t in inbox.json()["items"]]
        tid = f"{case_id}:{step}"
        assert tid in ids, (step, ids)
        r = await api.post(f"/tasks/{tid}/claim", headers=h)
        assert r.status_code == 200, r.text
        r = await api.post(f"/tasks/{tid}/complete", headers=h, json={"result": sample_result(d.step(step), form)})
        assert r.status_code == 200, r.text
    r = await api.get(f"/cases/{case_id}", headers=await login("applicant1"))
    print(r.json()["status"])
    t = await api.get(f"/cases/{case_id}/timeline", headers=await login("supervisor"))
    assert t.status_code == 200, t.text
    print(t.json()["steps"])
