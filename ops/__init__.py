"""Operations: the roof over the apps (overview, doctor, maintenance, schedules)."""
