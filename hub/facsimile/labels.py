"""The printed words of the facsimiles, in English, French and Spanish: box labels, titles, section headings, the
certification statements of the models, and the notices of the sheet.

Labels follow the wording of the models: the IPPC model phytosanitary certificates (ISPM 12, appendix 1), the EU
model health certificates and CHED (Implementing Regulations (EU) 2020/2235 and 2019/1715, Part I headings) and the
CITES standard permit form (Res. Conf. 12.3, annex 2). Each entry is ``(English, French, Spanish)``.
"""

from __future__ import annotations

from typing import Iterable, Sequence

#: The languages a facsimile can be labelled in, in the order they are printed.
LANGUAGES: tuple[str, ...] = ("en", "fr", "es")
#: What every facsimile carries when the document names no other of :data:`LANGUAGES`.
DEFAULT_LANGUAGES: tuple[str, ...] = ("en", "fr")

LABELS: dict[str, tuple[str, str, str]] = {
    # --- the sheet -------------------------------------------------------------------------------------------------
    "number": ("No.", "N°", "N.º"),
    "facsimile": ("Facsimile of an electronic document: the signed electronic original held by the issuing authority's hub is authoritative.",
                  "Fac-similé d'un document électronique : l'original électronique signé, détenu par le hub de l'autorité émettrice, fait foi.",
                  "Facsímil de un documento electrónico: el original electrónico firmado, conservado por el hub de la autoridad emisora, es el auténtico."),
    "verify": ("Verify at", "Vérifier sur", "Verificar en"),
    "verification_code": ("Verification code", "Code de vérification", "Código de verificación"),
    "status": ("Status when printed", "Statut à l'impression", "Estado al imprimir"),
    "page": ("Page", "Page", "Página"),
    "replaces": ("This certificate replaces certificate No.", "Ce certificat remplace le certificat n°", "Este certificado reemplaza al certificado N.º"),
    "signature_stamp": ("Signature and stamp of the issuing authority", "Signature et cachet de l'autorité émettrice", "Firma y sello de la autoridad emisora"),
    "signed_electronically": ("Signed electronically (PDF signature of the issuing authority)", "Signé électroniquement (signature PDF de l'autorité émettrice)",
                              "Firmado electrónicamente (firma PDF de la autoridad emisora)"),
    # --- the phytosanitary certificate (ISPM 12) -------------------------------------------------------------------
    "title_phytosanitary": ("PHYTOSANITARY CERTIFICATE", "CERTIFICAT PHYTOSANITAIRE", "CERTIFICADO FITOSANITARIO"),
    "title_phytosanitary_reexport": ("PHYTOSANITARY CERTIFICATE FOR RE-EXPORT", "CERTIFICAT PHYTOSANITAIRE POUR LA RÉEXPORTATION",
                                     "CERTIFICADO FITOSANITARIO PARA REEXPORTACIÓN"),
    "nppo_from": ("Plant Protection Organization of", "Organisation de protection des végétaux de", "Organización de Protección Fitosanitaria de"),
    "nppo_to": ("TO: Plant Protection Organization(s) of", "À : Organisation(s) de protection des végétaux de", "A: Organización(es) de Protección Fitosanitaria de"),
    "section_description": ("I. Description of consignment", "I. Description de l'envoi", "I. Descripción del envío"),
    "exporter": ("Name and address of exporter", "Nom et adresse de l'exportateur", "Nombre y dirección del exportador"),
    "consignee_declared": ("Declared name and address of consignee", "Nom et adresse déclarés du destinataire", "Nombre y dirección declarados del destinatario"),
    "packages": ("Number and description of packages", "Nombre et description des colis", "Número y descripción de los bultos"),
    "marks": ("Distinguishing marks", "Marques distinctives", "Marcas distintivas"),
    "place_of_origin": ("Place of origin", "Lieu d'origine", "Lugar de origen"),
    "conveyance": ("Declared means of conveyance", "Moyen de transport déclaré", "Medios de transporte declarados"),
    "point_of_entry": ("Declared point of entry", "Point d'entrée déclaré", "Punto de entrada declarado"),
    "produce": ("Name of produce and quantity declared", "Nom du produit et quantité déclarée", "Nombre del producto y cantidad declarada"),
    "botanical": ("Botanical name of plants", "Nom botanique des végétaux", "Nombre botánico de las plantas"),
    "original_certificate": ("Original phytosanitary certificate (re-export)", "Certificat phytosanitaire original (réexportation)",
                             "Certificado fitosanitario original (reexportación)"),
    "statement_phytosanitary": (
        "This is to certify that the plants, plant products or other regulated articles described herein have been inspected and/or "
        "tested according to appropriate official procedures and are considered to be free from the quarantine pests specified by the "
        "importing contracting party and to conform with the current phytosanitary requirements of the importing contracting party, "
        "including those for regulated non-quarantine pests.",
        "Il est certifié que les végétaux, produits végétaux ou autres articles réglementés décrits ci-dessus ont été inspectés et/ou "
        "testés suivant des procédures officielles appropriées et sont considérés comme indemnes des organismes de quarantaine spécifiés "
        "par la partie contractante importatrice et conformes aux exigences phytosanitaires en vigueur de la partie contractante "
        "importatrice, y compris à celles concernant les organismes réglementés non de quarantaine.",
        "Por la presente se certifica que las plantas, productos vegetales u otros artículos reglamentados descritos aquí se han "
        "inspeccionado y/o sometido a ensayo de acuerdo con los procedimientos oficiales adecuados y se considera que están libres de las "
        "plagas cuarentenarias especificadas por la parte contratante importadora y que cumplen los requisitos fitosanitarios vigentes de "
        "la parte contratante importadora, incluidos los relativos a las plagas no cuarentenarias reglamentadas."),
    "statement_phytosanitary_reexport": (
        "This is to certify that the plants, plant products or other regulated articles described above were imported into the "
        "contracting party of re-export from the contracting party of origin, covered by the original phytosanitary certificate named "
        "here, and that they are considered to conform with the current phytosanitary requirements of the importing contracting party.",
        "Il est certifié que les végétaux, produits végétaux ou autres articles réglementés décrits ci-dessus ont été importés dans la "
        "partie contractante de réexportation en provenance de la partie contractante d'origine, couverts par le certificat "
        "phytosanitaire original nommé ici, et qu'ils sont considérés comme conformes aux exigences phytosanitaires en vigueur de la "
        "partie contractante importatrice.",
        "Por la presente se certifica que las plantas, productos vegetales u otros artículos reglamentados descritos arriba se importaron "
        "a la parte contratante de reexportación desde la parte contratante de origen, amparados por el certificado fitosanitario "
        "original indicado aquí, y que se considera que cumplen los requisitos fitosanitarios vigentes de la parte contratante importadora."),
    "section_additional": ("II. Additional declaration", "II. Déclaration supplémentaire", "II. Declaración adicional"),
    "additional_declaration": ("Additional declaration", "Déclaration supplémentaire", "Declaración adicional"),
    "import_permit": ("Import permit No.", "N° du permis d'importation", "N.º del permiso de importación"),
    "inspection_date": ("Date of inspection", "Date d'inspection", "Fecha de inspección"),
    "official_information": ("Additional official information", "Renseignements officiels complémentaires", "Información oficial adicional"),
    "section_treatment": ("III. Disinfestation and/or disinfection treatment", "III. Traitement de désinfestation et/ou de désinfection",
                          "III. Tratamiento de desinfestación y/o desinfección"),
    "treatment_date": ("Date", "Date", "Fecha"),
    "treatment": ("Treatment", "Traitement", "Tratamiento"),
    "chemical": ("Chemical (active ingredient)", "Produit chimique (matière active)", "Producto químico (ingrediente activo)"),
    "duration_temperature": ("Duration and temperature", "Durée et température", "Duración y temperatura"),
    "concentration": ("Concentration", "Concentration", "Concentración"),
    "additional_information": ("Additional information", "Renseignements complémentaires", "Información adicional"),
    "place_of_issue": ("Place of issue", "Lieu de délivrance", "Lugar de expedición"),
    "officer": ("Name of authorized officer", "Nom du fonctionnaire autorisé", "Nombre del funcionario autorizado"),
    "date": ("Date", "Date", "Fecha"),
    # --- health certificates (EU model, Part I / Part II) ----------------------------------------------------------
    "title_veterinary": ("VETERINARY HEALTH CERTIFICATE", "CERTIFICAT VÉTÉRINAIRE", "CERTIFICADO VETERINARIO"),
    "title_sanitary": ("SANITARY CERTIFICATE", "CERTIFICAT SANITAIRE", "CERTIFICADO SANITARIO"),
    "title_inspection": ("OFFICIAL CERTIFICATE (INTRA-TRADE)", "CERTIFICAT OFFICIEL (ÉCHANGES INTRA-UE)", "CERTIFICADO OFICIAL (COMERCIO INTRA-UE)"),
    "title_sps": ("SPS CERTIFICATE", "CERTIFICAT SPS", "CERTIFICADO MSF"),
    "part1_health": ("Part I: Details of dispatched consignment", "Partie I : Renseignements concernant le lot expédié", "Parte I: Datos del envío expedido"),
    "consignor_exporter": ("Consignor/Exporter", "Expéditeur/Exportateur", "Expedidor/Exportador"),
    "certificate_reference": ("Certificate reference", "Référence du certificat", "Referencia del certificado"),
    "central_authority": ("Central competent authority", "Autorité centrale compétente", "Autoridad central competente"),
    "local_authority": ("Local competent authority", "Autorité locale compétente", "Autoridad local competente"),
    "consignee_importer": ("Consignee/Importer", "Destinataire/Importateur", "Destinatario/Importador"),
    "operator_responsible": ("Operator responsible for the consignment", "Opérateur responsable du lot", "Operador responsable de la partida"),
    "country_of_origin": ("Country of origin", "Pays d'origine", "País de origen"),
    "country_of_destination": ("Country of destination", "Pays de destination", "País de destino"),
    "place_of_dispatch": ("Place of dispatch", "Lieu d'expédition", "Lugar de expedición"),
    "place_of_destination": ("Place of destination", "Lieu de destination", "Lugar de destino"),
    "place_of_loading": ("Place of loading", "Lieu de chargement", "Lugar de carga"),
    "departure": ("Date and time of departure", "Date et heure du départ", "Fecha y hora de salida"),
    "means_of_transport": ("Means of transport", "Moyens de transport", "Medios de transporte"),
    "entry_bcp": ("Entry border control post", "Poste de contrôle frontalier d'entrée", "Puesto de control fronterizo de entrada"),
    "accompanying_documents": ("Accompanying documents", "Documents d'accompagnement", "Documentos de acompañamiento"),
    "containers_seals": ("Container No./Seal No.", "N° du conteneur/N° du scellé", "N.º del contenedor/N.º del precinto"),
    "certified_for": ("Certified as or for", "Certifiés aux fins de", "Certificados como o para"),
    "total_packages": ("Total number of packages", "Nombre total de conditionnements", "Número total de bultos"),
    "total_weight": ("Total net weight/gross weight (kg)", "Poids net total/poids brut total (kg)", "Peso neto total/peso bruto total (kg)"),
    "description_consignment": ("Description of consignment", "Description du lot", "Descripción de la partida"),
    "part2_health": ("Part II: Certification", "Partie II : Certification", "Parte II: Certificación"),
    "certifying_officer": ("Certifying officer", "Agent certificateur", "Agente certificador"),
    "clauses": ("Certified", "Certifié", "Certificado"),
    # --- the CHED (Regulation (EU) 2019/1715) ----------------------------------------------------------------------
    "title_ched": ("COMMON HEALTH ENTRY DOCUMENT", "DOCUMENT SANITAIRE COMMUN D'ENTRÉE", "DOCUMENTO SANITARIO COMÚN DE ENTRADA"),
    "ched_A": ("CHED-A: live animals", "DSCE-A : animaux vivants", "DSCE-A: animales vivos"),
    "ched_P": ("CHED-P: products", "DSCE-P : produits", "DSCE-P: productos"),
    "ched_PP": ("CHED-PP: plants, plant products and other objects", "DSCE-PP : végétaux, produits végétaux et autres objets",
                "DSCE-PP: vegetales, productos vegetales y otros objetos"),
    "ched_D": ("CHED-D: feed and food of non-animal origin", "DSCE-D : aliments pour animaux et denrées alimentaires d'origine non animale",
               "DSCE-D: piensos y alimentos de origen no animal"),
    "part1_ched": ("Part I: Description of the consignment", "Partie I : Description du lot", "Parte I: Descripción de la partida"),
    "imsoc_reference": ("IMSOC reference", "Référence IMSOC", "Referencia IMSOC"),
    "bcp": ("Border control post", "Poste de contrôle frontalier", "Puesto de control fronterizo"),
    "country_of_dispatch": ("Country of dispatch", "Pays d'expédition", "País de expedición"),
    "transit_countries": ("Countries of transit", "Pays de transit", "Países de tránsito"),
    "customs_agent": ("Customs transit agent", "Agent en douane de transit", "Agente de aduanas de tránsito"),
    "arrival": ("Estimated arrival at the border control post", "Arrivée prévue au poste de contrôle frontalier",
                "Llegada prevista al puesto de control fronterizo"),
    "purpose": ("Purpose", "Finalité", "Finalidad"),
    "declaration": ("Declaration", "Déclaration", "Declaración"),
    "part2_ched": ("Part II: Controls and decision", "Partie II : Contrôles et décision", "Parte II: Controles y decisión"),
    "part3_ched": ("Part III: Follow-up", "Partie III : Suivi", "Parte III: Seguimiento"),
    "signatory": ("Signatory", "Signataire", "Firmante"),
    # --- the CITES permit (Res. Conf. 12.3, annex 2) ---------------------------------------------------------------
    "title_cites": ("CONVENTION ON INTERNATIONAL TRADE IN ENDANGERED SPECIES OF WILD FAUNA AND FLORA",
                    "CONVENTION SUR LE COMMERCE INTERNATIONAL DES ESPÈCES DE FAUNE ET DE FLORE SAUVAGES MENACÉES D'EXTINCTION",
                    "CONVENCIÓN SOBRE EL COMERCIO INTERNACIONAL DE ESPECIES AMENAZADAS DE FAUNA Y FLORA SILVESTRES"),
    "cites_document": ("PERMIT/CERTIFICATE No.", "PERMIS/CERTIFICAT N°", "PERMISO/CERTIFICADO N.º"),
    "cites_export": ("Export", "Exportation", "Exportación"),
    "cites_reexport": ("Re-export", "Réexportation", "Reexportación"),
    "cites_import": ("Import", "Importation", "Importación"),
    "cites_other": ("Other", "Autre", "Otro"),
    "original": ("Original", "Original", "Original"),
    "copy": ("Copy", "Copie", "Copia"),
    "valid_until": ("Valid until", "Date limite de validité", "Válido hasta el"),
    "importer": ("Importer (name and address)", "Importateur (nom et adresse)", "Importador (nombre y dirección)"),
    "country_of_import": ("Country of import", "Pays d'importation", "País de importación"),
    "exporter_cites": ("Exporter/re-exporter (name, address and country)", "Exportateur/réexportateur (nom, adresse et pays)",
                       "Exportador/reexportador (nombre, dirección y país)"),
    "special_conditions": ("Special conditions", "Conditions particulières", "Condiciones especiales"),
    "purpose_transaction": ("Purpose of the transaction", "But de la transaction", "Propósito de la transacción"),
    "security_stamp": ("Security stamp No.", "N° du timbre de sécurité", "N.º de la estampilla de seguridad"),
    "management_authority": ("Name, address, national seal/stamp and country of Management Authority",
                             "Nom, adresse, sceau/cachet national et pays de l'organe de gestion",
                             "Nombre, dirección, sello/estampilla nacional y país de la Autoridad Administrativa"),
    "species": ("Scientific name (genus and species) and common name of animal or plant",
                "Nom scientifique (genre et espèce) et nom commun de l'animal ou de la plante",
                "Nombre científico (género y especie) y nombre común del animal o de la planta"),
    "specimens": ("Description of specimens, including identifying marks or numbers (age/sex if live)",
                  "Description des spécimens, y compris les marques ou numéros d'identification (âge/sexe si vivant)",
                  "Descripción de los especímenes, incluidas las marcas o números de identificación (edad/sexo si vivos)"),
    "appendix_source": ("Appendix No. and source", "Annexe n° et source", "Apéndice N.º y origen"),
    "quantity": ("Quantity (including unit)", "Quantité (y compris l'unité)", "Cantidad (incluida la unidad)"),
    "quota": ("Total exported/Quota", "Total exporté/Quota", "Total exportado/Cupo"),
    "origin_permit": ("Country of origin, Permit No., Date", "Pays d'origine, Permis n°, Date", "País de origen, Permiso N.º, Fecha"),
    "last_reexport": ("Country of last re-export, Certificate No., Date", "Pays de la dernière réexportation, Certificat n°, Date",
                      "País de la última reexportación, Certificado N.º, Fecha"),
    "operation": ("No. of the operation or date of acquisition", "N° de l'opération ou date d'acquisition", "N.º de la operación o fecha de adquisición"),
    "issued_by": ("This permit/certificate is issued by: place, date, signatory", "Ce permis/certificat est délivré par : lieu, date, signataire",
                  "Este permiso/certificado ha sido expedido por: lugar, fecha, firmante"),
    "export_endorsement": ("Export endorsement: quantity, port of export, date", "Visa d'exportation : quantité, port d'exportation, date",
                           "Endoso de exportación: cantidad, puerto de exportación, fecha"),
    "transport_document": ("Bill of lading/Air waybill number", "N° du connaissement/de la lettre de transport aérien", "N.º del conocimiento de embarque/guía aérea"),
}


def label(key: str, languages: Sequence[str]) -> list[str]:
    """The label ``key`` in each of ``languages``, without repeating a wording two languages share."""
    words = LABELS[key]
    found: list[str] = []
    for language in languages:
        text = words[LANGUAGES.index(language)]
        if text not in found:
            found.append(text)
    return found


def languages_for(carried: Iterable[str]) -> tuple[str, ...]:
    """The languages to label a document in: English and French always, Spanish too when the document carries it
    (``carried``: the ISO 639-1 codes of its texts, any case)."""
    codes = {code.strip().lower()[:2] for code in carried if code}
    return tuple(language for language in LANGUAGES if language in DEFAULT_LANGUAGES or language in codes)
