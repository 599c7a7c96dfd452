from models.case import Actor, CaseInput, ClaimInput, CompleteStepInput, CaseStatus
from models.catalogue import shipped_definitions
from models.samples import sample_birth_form, sample_result
from tests.conftest import running_worker
from workflows.case_workflow import CaseWorkflow
from workflows.starter import new_case_id, start_case

ORDER = ["birth_certificate", "vaccination_certificate", "hukou_registration", "medical_insurance_enrollment", "maternity_benefit_review", "social_security_card"]

async def test_smoke(env, settings, engine, task_queue):
    definition = shipped_definitions()["birth"]
    form = sample_birth_form()
    case = CaseInput(case_id=new_case_id("a", None), definition=definition, channel="online", form=form, owner="applicant1", submitted_by=Actor(username="applicant1", role="applicant"))
    async with running_worker(env.client, settings, engine, task_queue):
        handle, created = await start_case(env.client, task_queue, case)
        snap = await handle.execute_update(CaseWorkflow.wait_accepted)
        print(snap.acceptance_notice.model_dump_json(indent=1))
        for code in ORDER:
            step = definition.step(code)
            actor = Actor(username=f"{step.department}_officer", role="officer", unit=step.department)
            await handle.execute_update(CaseWorkflow.claim, ClaimInput(actor=actor, step=code))
            await handle.execute_update(CaseWorkflow.complete, CompleteStepInput(actor=actor, step=code, result=sample_result(step, form)))
        result = await handle.result()
        assert result.status == CaseStatus.COMPLETED
