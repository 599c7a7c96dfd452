"""Application forms: what an applicant or a window clerk fills in for each "one thing".

A definition names its form (``form: birth``); ``FORMS`` maps that name to the
pydantic model that validates a submission before any workflow starts.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from models.identity import InvalidIdNumber, validate_id_number


def _clean_text(value: str) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    if any(unicodedata.category(char) in {"Cc", "Cs"} for char in value):
        raise ValueError("contains control characters")
    return value


def _check_id_number(value: str) -> str:
    try:
        return validate_id_number(value)
    except InvalidIdNumber as exc:
        raise ValueError(str(exc)) from exc


PersonName = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(_clean_text)]
Address = Annotated[str, Field(min_length=2, max_length=200), AfterValidator(_clean_text)]
IdNumber = Annotated[str, Field(min_length=15, max_length=20), AfterValidator(_check_id_number)]
Phone = Annotated[str, Field(pattern=r"^(1\d{10}|0\d{2,3}-?\d{7,8})$")]


class _Form(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Newborn(_Form):
    name: PersonName
    sex: Literal["male", "female"]
    born_at: AwareDatetime
    birthplace_division_code: str = Field(pattern=r"^\d{6}$")


class Parent(_Form):
    name: PersonName
    id_number: IdNumber


class Hukou(_Form):
    follow: Literal["father", "mother"]
    address: Address


class ApplicantPerson(_Form):
    name: PersonName
    id_number: IdNumber
    phone: Phone
    relation: Literal["father", "mother", "grandparent", "guardian", "other"]


class Delivery(_Form):
    method: Literal["pickup", "mail"]
    address: Address | None = None

    @model_validator(mode="after")
    def _mail_needs_address(self) -> Delivery:
        if self.method == "mail" and not self.address:
            raise ValueError("address is required when the method is mail")
        return self


class BirthForm(_Form):
    """出生"一件事"办理登记表: birth basics, hukou declaration, insurance and applicant."""

    newborn: Newborn
    mother: Parent
    father: Parent | None = None
    marital_status: Literal["married", "unmarried"]
    hukou: Hukou
    applicant: ApplicantPerson
    delivery: Delivery
    # Materials handed in with the form (code → document reference), e.g. the
    # 非婚生育声明; materials the data-sharing platform holds are not uploaded.
    materials: dict[
        Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")],
        Annotated[str, Field(min_length=1, max_length=200)],
    ] = Field(default_factory=dict, max_length=50)

    @model_validator(mode="after")
    def _father_rules(self) -> BirthForm:
        if self.father is None and (self.marital_status == "married" or self.hukou.follow == "father"):
            raise ValueError("father is required when the parents are married or the child follows the father")
        return self


FORMS: dict[str, type[_Form]] = {"birth": BirthForm}
