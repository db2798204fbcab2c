from pydantic import BaseModel


class Reading(BaseModel):
    name: str
    values: list[int]
