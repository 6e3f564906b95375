"""A realistic Swiss demo tenant: three companies, a manager hierarchy, department groups."""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from deltasync.sandbox.graph import tenant_data as td
from deltasync.sandbox.graph.tenant import Tenant


@dataclass
class _Person:
    lang: str
    sex: str
    given: str
    surname: str
    company: str | None
    department: str | None
    title: str
    level: int  # 0 CEO of the group, 1 CEO of a company, 2 head, 3 team lead, 4 staff
    manager: int | None = None
    external: bool = False
    employee_type: str | None = "Employee"


def make_tenant(
    sim: Tenant, n_users: int = 200, *, seed: int = 7, domain: str = "firma.ch"
) -> list[str]:
    """Fill ``sim`` with a realistic Swiss tenant; returns the new user ids, managers first.

    Three companies of one group (``Firma AG``, ``Firma GmbH``, ``Tochtergesellschaft``),
    departments with heads and team leads forming a manager hierarchy, German, French and
    Italian names, Swiss mobile (+41 7x) and office numbers, hire dates entered at local
    midnight (so ``…T22:00:00Z`` or ``…T23:00:00Z``), about 3 % disabled accounts, a few
    guests from ``external.<domain>``, and groups of several sizes (everyone, departments, a
    nesting chain and a nesting cycle; see :func:`_nested_groups`). Deterministic for a seed (and
    the sim's own seed, which makes the object ids).
    """
    rng = random.Random(f"tenant:{seed}")
    n_external = 0 if n_users < 10 else max(2, round(n_users * 0.02))
    n_internal = n_users - n_external
    people = _plan_people(rng, n_internal)
    for _ in range(n_external):
        lang = rng.choices(td.LANGUAGES, td.LANGUAGE_WEIGHTS)[0]
        sex = rng.choice(("f", "m"))
        people.append(
            _Person(
                lang=lang,
                sex=sex,
                given=rng.choice(td.FIRST_NAMES[lang][sex]),
                surname=rng.choice(td.SURNAMES[lang]),
                company=None,
                department=None,
                title=td.EXTERNAL_TITLES[sex == "f"],
                level=5,
                external=True,
                employee_type=None,
            )
        )

    onmicrosoft = td.onmicrosoft_domain(domain)
    external_domain = f"{td.EXTERNAL_SUBDOMAIN}.{domain}"
    used_locals: set[str] = set()
    # the last counter per name, so the 40th "Anna Müller" costs one step, not 40
    name_counters: dict[str, int] = {}
    used_employee_ids: set[str] = set()
    # five digits run out near 90,000 people; a bigger tenant gets six
    employee_id_end = 100000 if n_internal <= 45000 else 1000000
    zurich = ZoneInfo("Europe/Zurich")
    order = sorted(range(len(people)), key=lambda i: people[i].level)
    staff = [i for i, p in enumerate(people) if p.level == 4]
    disabled = set(rng.sample(staff, min(len(staff), round(n_users * 0.03))))
    ids: dict[int, str] = {}
    for index in order:
        person = people[index]
        base_local = f"{td.ascii_local_part(person.given)}.{td.ascii_local_part(person.surname)}"
        counter = name_counters.get(base_local, 1)
        local = base_local if counter == 1 else f"{base_local}{counter}"
        while local in used_locals:
            counter += 1
            local = f"{base_local}{counter}"
        used_locals.add(local)
        name_counters[base_local] = counter
        mail_domain = external_domain if person.external else domain
        upn = f"{local}@{mail_domain}"
        has_mailbox = person.external or person.level < 4 or rng.random() > 0.02
        mail = upn if has_mailbox else None
        proxies: list[str] = []
        if mail:
            initials = (
                f"{td.ascii_local_part(person.given)[:1]}.{td.ascii_local_part(person.surname)}"
            )
            proxies = [f"SMTP:{mail}"]
            if not person.external:
                if f"{initials}@{domain}" != mail:
                    proxies.append(f"smtp:{initials}@{domain}")
                proxies.append(f"smtp:{local}@{onmicrosoft}")
        city = _city_for(rng, person)
        area = td.CITIES[city][1]
        props: dict[str, Any] = {
            "userPrincipalName": upn,
            "mail": mail,
            "givenName": person.given,
            "surname": person.surname,
            "displayName": f"{person.given} {person.surname}",
            "jobTitle": person.title,
            "department": person.department,
            "companyName": person.company,
            "officeLocation": None if person.external else city,
            "preferredLanguage": td.PREFERRED_LANGUAGE[person.lang],
            "usageLocation": "CH",
            "country": "Schweiz",
            "city": city,
            "userType": "Guest" if person.external else "Member",
            "employeeType": person.employee_type,
            "proxyAddresses": proxies,
            "mailNickname": local,
            "accountEnabled": True,
        }
        if rng.random() < 0.85:
            props["mobilePhone"] = td.swiss_number(
                rng.choice(td.MOBILE_PREFIXES), f"{rng.randrange(10**7):07d}"
            )
        if not person.external:
            if rng.random() < 0.8:
                props["businessPhones"] = [td.swiss_number(area, f"{rng.randrange(10**7):07d}")]
            employee_id = f"{rng.randrange(10000, employee_id_end)}"
            while employee_id in used_employee_ids:
                employee_id = f"{rng.randrange(10000, employee_id_end)}"
            used_employee_ids.add(employee_id)
            props["employeeId"] = employee_id
            props["employeeHireDate"] = _hire_date(rng, person.level, zurich)
            created = datetime.fromisoformat(props["employeeHireDate"]) - timedelta(days=14)
            props["createdDateTime"] = created.strftime("%Y-%m-%dT%H:%M:%SZ")
            if rng.random() < 0.6:
                props["onPremisesImmutableId"] = _b64std(rng.randbytes(16))
                props["onPremisesSyncEnabled"] = True
        if index in disabled:
            props["accountEnabled"] = False
        if person.external:
            props["createdDateTime"] = f"2025-{rng.randrange(1, 13):02d}-15T08:30:00Z"
        manager = ids[person.manager] if person.manager is not None else None
        ids[index] = sim.add_user(manager=manager, **props)

    created_ids = [ids[i] for i in order]
    by_department: dict[str, list[str]] = {}
    everyone: list[str] = []
    for index in order:
        person = people[index]
        if person.external:
            continue
        everyone.append(ids[index])
        if person.department:
            by_department.setdefault(person.department, []).append(ids[index])
    if everyone:
        sim.add_group(
            displayName="Alle Mitarbeitenden",
            description="Alle internen Mitarbeitenden der Firma-Gruppe",
            mail=f"alle@{domain}",
            mailNickname="alle",
            mailEnabled=True,
            securityEnabled=False,
            groupTypes=["Unified"],
            visibility="Private",
            members=everyone,
        )
    for department in sorted(by_department):
        nickname = f"abt-{td.ascii_local_part(department)}"
        sim.add_group(
            displayName=f"Abteilung {department}",
            description=f"Sicherheitsgruppe der Abteilung {department}",
            mailNickname=nickname,
            securityEnabled=True,
            mailEnabled=False,
            members=by_department[department],
        )
    _nested_groups(sim, people, ids, domain)
    return created_ids


def _nested_groups(sim: Tenant, people: list[_Person], ids: dict[int, str], domain: str) -> None:
    """A nesting chain (Kader ⊃ Abteilungsleitungen ⊃ Teamleitungen) and one cycle
    (Projekt Nord ⊃ Projekt Süd ⊃ Projekt Nord), as real tenants have them."""
    by_level: dict[int, list[str]] = {}
    for index, person in enumerate(people):
        if not person.external:
            by_level.setdefault(person.level, []).append(ids[index])
    if not by_level:
        return
    leads = sim.add_group(
        displayName="Teamleitungen",
        description="Alle Teamleiterinnen und Teamleiter",
        mailNickname="teamleitungen",
        members=by_level.get(3, []),
    )
    heads = sim.add_group(
        displayName="Abteilungsleitungen",
        description="Abteilungsleitungen und, verschachtelt, die Teamleitungen",
        mailNickname="abteilungsleitungen",
        members=[*by_level.get(2, []), leads],
    )
    sim.add_group(
        displayName="Kader",
        description="Geschäftsleitung und, verschachtelt, alle Führungskräfte",
        mail=f"kader@{domain}",
        mailNickname="kader",
        members=[*by_level.get(0, []), *by_level.get(1, []), heads],
    )
    staff = by_level.get(4, [])
    north = sim.add_group(
        displayName="Projekt Nord", mailNickname="projekt-nord", members=staff[0:3]
    )
    south = sim.add_group(
        displayName="Projekt Süd", mailNickname="projekt-sued", members=[*staff[3:5], north]
    )
    sim.add_member(north, south)  # the cycle: each project group contains the other


def _plan_people(rng: random.Random, n: int) -> list[_Person]:
    def person(company: str | None, department: str | None, level: int) -> _Person:
        lang = rng.choices(td.LANGUAGES, td.LANGUAGE_WEIGHTS)[0]
        if company == "Tochtergesellschaft" and rng.random() < 0.6:
            lang = "fr"
        sex = rng.choice(("f", "m"))
        return _Person(
            lang=lang,
            sex=sex,
            given=rng.choice(td.FIRST_NAMES[lang][sex]),
            surname=rng.choice(td.SURNAMES[lang]),
            company=company,
            department=department,
            title="",
            level=level,
        )

    companies = list(td.COMPANIES)
    weights = [td.COMPANIES[c][0] for c in companies]
    departments = list(td.DEPARTMENTS)
    department_weights = [td.DEPARTMENTS[d][0] for d in departments]
    people: list[_Person] = []
    ceo_of: dict[str, int] = {}
    for company in companies:
        if len(people) >= n:
            break
        level = 0 if company == td.PARENT_COMPANY else 1
        ceo = person(company, td.MANAGEMENT_DEPARTMENT, level)
        ceo.title = td.CEO_TITLES[ceo.sex == "f"]
        ceo.manager = 0 if level == 1 else None
        ceo_of[company] = len(people)
        people.append(ceo)
    groups: dict[tuple[str, str], list[int]] = {}
    while len(people) < n:
        company = rng.choices(companies, weights)[0]
        department = rng.choices(departments, department_weights)[0]
        groups.setdefault((company, department), []).append(len(people))
        people.append(person(company, department, 4))
    for (company, department), members in groups.items():
        _, head_titles, staff_titles = td.DEPARTMENTS[department]
        head = people[members[0]]
        head.level, head.title = 2, head_titles[head.sex == "f"]
        head.manager = ceo_of.get(company)
        leads = members[1:3] if len(members) > 8 else []
        for lead_index in leads:
            lead = people[lead_index]
            lead.level, lead.title = 3, td.TEAM_LEAD_TITLES[lead.sex == "f"]
            lead.manager = members[0]
        for staff_index in members[1:]:
            if staff_index in leads:
                continue
            staff = people[staff_index]
            staff.manager = rng.choice(leads) if leads else members[0]
            if rng.random() < 0.04:
                staff.title = td.APPRENTICE_TITLES[staff.sex == "f"]
                staff.employee_type = "Apprentice"
            else:
                staff.title = rng.choice(staff_titles)[staff.sex == "f"]
    return people


def _city_for(rng: random.Random, person: _Person) -> str:
    if person.company and person.level <= 1:
        return td.COMPANIES[person.company][1]
    in_region = [c for c, (lang, _) in td.CITIES.items() if lang == person.lang]
    return rng.choice(in_region)


def _hire_date(rng: random.Random, level: int, tz: ZoneInfo) -> str:
    start = date(1992, 1, 1) if level <= 2 else date(2004, 1, 1)
    day = start + timedelta(days=rng.randrange((date(2025, 12, 31) - start).days))
    if rng.random() < 0.7:
        day = day.replace(day=1)  # most contracts start on the first of a month
    if rng.random() < 0.1:
        return f"{day.isoformat()}T00:00:00Z"  # entered through the API as UTC midnight
    local_midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    return local_midnight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64std(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def add_project_groups(sim: Tenant, user_ids: list[str], n: int, *, seed: int = 7) -> list[str]:
    """Add ``n`` security groups ``Projekt 0001`` … of 10 to 90 random members each.

    A big tenant has far more groups than departments; ``sandbox serve --groups 2000`` uses
    this to put 2,000 groups in front of a group sync. Deterministic for a seed.
    """
    rng = random.Random(f"projects:{seed}")
    ids: list[str] = []
    for number in range(1, n + 1):
        members = rng.sample(user_ids, min(len(user_ids), rng.randrange(10, 91)))
        ids.append(
            sim.add_group(
                displayName=f"Projekt {number:04d}",
                description=f"Projektgruppe {number}",
                mailNickname=f"projekt-{number:04d}",
                securityEnabled=True,
                mailEnabled=False,
                members=members,
            )
        )
    return ids
