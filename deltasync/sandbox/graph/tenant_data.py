"""Realistic Swiss tenant data for the sandbox: names, companies, departments, places, phones.

The sandbox tenant should look like the tenants deltasync meets in the field (Swiss SMEs,
schools, care homes): German, French and Italian names with umlauts and accents, double
names and particles, three companies of one group, a hierarchy, Swiss phone numbers. This
module only holds the raw material and a few pure helpers; ``graph_sim.make_tenant`` builds
users out of it with a seeded random generator.
"""

from __future__ import annotations

import unicodedata
from typing import Final

# Language regions and their share of the staff.
LANGUAGES: Final[tuple[str, ...]] = ("de", "fr", "it")
LANGUAGE_WEIGHTS: Final[tuple[int, ...]] = (64, 26, 10)
PREFERRED_LANGUAGE: Final[dict[str, str]] = {"de": "de-CH", "fr": "fr-CH", "it": "it-CH"}


def _names(*chunks: str) -> tuple[str, ...]:
    """Split comma-separated name lists (kept as text so the lists stay readable)."""
    return tuple(n.strip() for chunk in chunks for n in chunk.split(",") if n.strip())


FIRST_NAMES: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "de": {
        "f": _names(
            "Anna, Laura, Sarah, Lea, Nina, Julia, Sandra, Claudia, Monika, Ursula, "
            "Barbara, Andrea, Nicole, Corinne, Franziska, Regula, Brigitte, Käthi, "
            "Jasmin, Seraina, Mirjam, Anna-Lena, Rahel, Simone, Lara, Michèle, Zoë, "
            "Jacqueline, Doris, Verena"
        ),
        "m": _names(
            "Peter, Daniel, Thomas, Martin, Andreas, Stefan, Marco, Lukas, Reto, "
            "Urs, Beat, Hansruedi, Christoph, Matthias, Jürg, Roger, Patrick, Simon, "
            "Fabian, Michael, Adrian, Kevin, Samuel, Jonas, Noah, René, Hans-Peter, "
            "Dominik, Pascal, Ueli"
        ),
    },
    "fr": {
        "f": _names(
            "Sophie, Camille, Chloé, Léa, Manon, Céline, Isabelle, Nathalie, "
            "Valérie, Aurélie, Gaëlle, Noémie, Anaïs, Marie-Claire, Élodie, Mélanie, "
            "Françoise, Joëlle"
        ),
        "m": _names(
            "Jean, Pierre, Nicolas, Olivier, Julien, Sébastien, Frédéric, Laurent, "
            "Jérôme, François, Cédric, Grégoire, Loïc, Jean-Marc, Raphaël, Théo, "
            "Benoît, Yves"
        ),
    },
    "it": {
        "f": _names(
            "Giulia, Chiara, Francesca, Sara, Alessia, Martina, Elena, Federica, "
            "Valentina, Lucia, Noemi, Ilaria"
        ),
        "m": _names(
            "Luca, Marco, Matteo, Alessandro, Andrea, Davide, Giorgio, Stefano, "
            "Nicola, Simone, Fabio, Niccolò"
        ),
    },
}

SURNAMES: Final[dict[str, tuple[str, ...]]] = {
    "de": _names(
        "Müller, Meier, Schmid, Keller, Weber, Huber, Schneider, Meyer, Steiner, "
        "Fischer, Gerber, Brunner, Baumann, Frei, Zimmermann, Moser, Widmer, Wyss, "
        "Graf, Roth, Suter, Baumgartner, Bachmann, Studer, Bühler, Kälin, "
        "Hofstetter, Rüegg, Lüthi, Schnyder, Zürcher, Gisler, Odermatt, Ammann, "
        "Häfliger, Kündig, Schläpfer, von Arx, von Allmen, Gähwiler, Imhof, Egli, "
        "Stucki, Hürlimann, Tschudi"
    ),
    "fr": _names(
        "Favre, Rochat, Bonvin, Perrin, Blanc, Chevalley, Cuénod, Dubois, Fontaine, "
        "Girard, Jaquet, Mottier, Pasche, Rey, Vuilleumier, Bovet, de Weck, "
        "de Montmollin, Pittet, Aebischer, Crausaz, Genoud, Thévenaz, Zufferey, "
        "Lüthi-Rochat"
    ),
    "it": _names(
        "Bernasconi, Rossi, Ferrari, Bianchi, Galli, Lombardi, Pedrazzini, Cattaneo, "
        "Dell'Acqua, Di Stefano, Gianella, Rusconi, Quadri, Togni, Nessi, Zanetti"
    ),
}

# city -> (language region, phone area code)
CITIES: Final[dict[str, tuple[str, str]]] = {
    "Zürich": ("de", "44"),
    "Winterthur": ("de", "52"),
    "Bern": ("de", "31"),
    "Basel": ("de", "61"),
    "Luzern": ("de", "41"),
    "Zug": ("de", "41"),
    "St. Gallen": ("de", "71"),
    "Aarau": ("de", "62"),
    "Chur": ("de", "81"),
    "Lausanne": ("fr", "21"),
    "Genève": ("fr", "22"),
    "Fribourg": ("fr", "26"),
    "Neuchâtel": ("fr", "32"),
    "Sion": ("fr", "27"),
    "Lugano": ("it", "91"),
    "Bellinzona": ("it", "91"),
}

# companyName -> (share of the staff, head office)
COMPANIES: Final[dict[str, tuple[int, str]]] = {
    "Firma AG": (60, "Zürich"),
    "Firma GmbH": (25, "Bern"),
    "Tochtergesellschaft": (15, "Lausanne"),
}
PARENT_COMPANY: Final[str] = "Firma AG"

# department -> (weight, head title (m, f), staff titles [(m, f), ...])
Titles = tuple[str, str]
DEPARTMENTS: Final[dict[str, tuple[int, Titles, tuple[Titles, ...]]]] = {
    "Finanzen": (
        8,
        ("Leiter Finanzen", "Leiterin Finanzen"),
        (
            ("Buchhalter", "Buchhalterin"),
            ("Controller", "Controllerin"),
            ("Sachbearbeiter Kreditoren", "Sachbearbeiterin Kreditoren"),
        ),
    ),
    "Personal": (
        6,
        ("Leiter Personal", "Leiterin Personal"),
        (
            ("HR-Fachmann", "HR-Fachfrau"),
            ("Lohnbuchhalter", "Lohnbuchhalterin"),
            ("Personalassistent", "Personalassistentin"),
        ),
    ),
    "Informatik": (
        8,
        ("Leiter Informatik", "Leiterin Informatik"),
        (
            ("Systemtechniker", "Systemtechnikerin"),
            ("Applikationsentwickler", "Applikationsentwicklerin"),
            ("ICT-Supporter", "ICT-Supporterin"),
        ),
    ),
    "Verkauf": (
        14,
        ("Verkaufsleiter", "Verkaufsleiterin"),
        (
            ("Key Account Manager", "Key Account Managerin"),
            ("Verkaufsberater", "Verkaufsberaterin"),
            ("Innendienstmitarbeiter", "Innendienstmitarbeiterin"),
        ),
    ),
    "Marketing": (
        5,
        ("Leiter Marketing", "Leiterin Marketing"),
        (
            ("Marketingfachmann", "Marketingfachfrau"),
            ("Grafiker", "Grafikerin"),
        ),
    ),
    "Produktion": (
        20,
        ("Produktionsleiter", "Produktionsleiterin"),
        (
            ("Polymechaniker", "Polymechanikerin"),
            ("Produktionsmitarbeiter", "Produktionsmitarbeiterin"),
            ("Anlagenführer", "Anlagenführerin"),
        ),
    ),
    "Logistik": (
        10,
        ("Leiter Logistik", "Leiterin Logistik"),
        (
            ("Logistiker EFZ", "Logistikerin EFZ"),
            ("Disponent", "Disponentin"),
        ),
    ),
    "Kundendienst": (
        9,
        ("Leiter Kundendienst", "Leiterin Kundendienst"),
        (
            ("Servicetechniker", "Servicetechnikerin"),
            ("Kundenberater", "Kundenberaterin"),
        ),
    ),
    "Pflege": (
        12,
        ("Leiter Pflege", "Leiterin Pflege"),
        (
            ("Pflegefachmann HF", "Pflegefachfrau HF"),
            ("Fachmann Gesundheit EFZ", "Fachfrau Gesundheit EFZ"),
            ("Pflegehelfer SRK", "Pflegehelferin SRK"),
        ),
    ),
    "Qualitätsmanagement": (
        3,
        ("Leiter Qualitätsmanagement", "Leiterin Qualitätsmanagement"),
        (("Qualitätsfachmann", "Qualitätsfachfrau"),),
    ),
}
MANAGEMENT_DEPARTMENT: Final[str] = "Geschäftsleitung"
CEO_TITLES: Final[Titles] = ("Geschäftsführer", "Geschäftsführerin")
TEAM_LEAD_TITLES: Final[Titles] = ("Teamleiter", "Teamleiterin")
APPRENTICE_TITLES: Final[Titles] = ("Lernender Kaufmann EFZ", "Lernende Kauffrau EFZ")
EXTERNAL_TITLES: Final[Titles] = ("Externer Berater", "Externe Beraterin")

MOBILE_PREFIXES: Final[tuple[str, ...]] = ("75", "76", "77", "78", "79")
EXTERNAL_SUBDOMAIN: Final[str] = "external"


def ascii_local_part(text: str) -> str:
    """Turn a name into the ASCII form used in mail addresses ("Müller" -> "mueller")."""
    text = text.lower()
    for umlaut, replacement in (("ä", "ae"), ("ö", "oe"), ("ü", "ue")):
        text = text.replace(umlaut, replacement)
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return "".join(c for c in plain if c.isascii() and (c.isalnum() or c == "-"))


def swiss_number(area: str, digits: str) -> str:
    """Format seven digits as a Swiss number in international form: ``+41 44 123 45 67``."""
    return f"+41 {area} {digits[:3]} {digits[3:5]} {digits[5:7]}"


def onmicrosoft_domain(domain: str) -> str:
    """The initial domain of a tenant: ``firma.ch`` -> ``firma.onmicrosoft.com``."""
    return f"{domain.split('.')[0]}.onmicrosoft.com"
