"""Every word a person reads, in plain Chilean Spanish. One place, so tone and facts stay consistent."""

from __future__ import annotations

# Rubros: stable keys in the database, labels for people. Order is the order of the buttons.
BUSINESS_CATEGORIES: dict[str, str] = {
    "almacen": "🛒 Almacén y abarrotes",
    "comida": "🍽️ Restaurante y comida",
    "panaderia": "🥖 Panadería y pastelería",
    "ropa": "👕 Ropa y calzado",
    "ferreteria": "🔨 Ferretería y construcción",
    "belleza": "💇 Peluquería y belleza",
    "taller": "🔧 Taller y servicio técnico",
    "salud": "💊 Farmacia y salud",
    "artesania": "🎁 Artesanía y regalos",
    "turismo": "🏨 Turismo y alojamiento",
    "otro": "🏪 Otro rubro",
}

# --- menu and help -------------------------------------------------------------------------
MENU_REGISTER = "📝 Registrarme"
MENU_HELP = "❓ Ayuda"
MENU_BARRIO = "🏘️ Mi barrio"
MENU_DIRECTORY = "🔎 Directorio"
MENU_PROFILE = "👤 Mi perfil"
MENU_MEMBERS = "👥 Socios y solicitudes"
MENU_ANNOUNCE = "📣 Anuncio"
MENU_MEETING = "📅 Reunión"
MENU_ATTENDANCE = "🙋 Asistencia"
MENU_CALL = "💰 Convocatoria"
MENU_PROMPT = "¿Qué quieres hacer? Toca una opción."
# `{register}` is HELP_REGISTER for someone not registered yet, and nothing for the others.
HELP = (
    "Barrio Conecta une a los negocios de tu barrio comercial.\n\n"
    "/barrio — ver tu barrio y su coordinación\n"
    "/directorio — buscar negocios del barrio\n"
    "/perfil — ver o cambiar tus datos\n"
    "/reuniones — próximas reuniones y tu respuesta\n"
    "/convocatorias — fondos abiertos para tu barrio\n"
    "/alerta — avisar al barrio de un robo, incendio u otra emergencia\n"
    "/silencio — horario en que anuncios y recordatorios esperan a la mañana\n"
    "/resumen — resumen de la semana, los lunes a las 9:00\n"
    "/misdatos — recibir un archivo con todo lo que guardamos de ti\n"
    "/baja — salir del barrio o borrar tus datos\n"
    "/cancelar — dejar lo que estabas haciendo"
)
# Registered, in no barrio yet (waiting, turned down, or gone): what opens now.
HELP_WITHOUT_BARRIO = (
    "Barrio Conecta une a los negocios de tu barrio comercial.\n\n"
    "/barrio — en qué va tu solicitud, o pedir ingreso a un barrio\n"
    "/perfil — ver o cambiar tus datos\n"
    "/alerta — números de emergencia\n"
    "/misdatos — recibir un archivo con todo lo que guardamos de ti\n"
    "/baja — borrar tus datos\n"
    "/cancelar — dejar lo que estabas haciendo"
)
HELP_AFTER_APPROVAL = (
    "\n\nCuando un barrio apruebe tu ingreso se abren su directorio, sus reuniones, sus "
    "convocatorias y las alertas al barrio."
)
HELP_NEWCOMER = (
    "Barrio Conecta une a los negocios de tu barrio comercial: avisos, reuniones, alertas de "
    "seguridad y fondos de Sercotec, aquí en tu teléfono.\n\n"
    "/registro — inscribirte en tu barrio (toma un minuto)\n"
    "/alerta — números de emergencia\n"
    "/cancelar — dejar lo que estabas haciendo"
)
GREETING_NEWCOMER = (
    "Uno a los negocios de tu barrio comercial: avisos, reuniones y alertas.\nToca «Registrarme» 👇"
)
YOU_ARE_WELCOME = "¡De nada! 🙌 ¿Algo más? Toca una opción."
GREETING_MEMBER = "¡Hola, {name}! 👋 ¿Qué quieres hacer? Toca una opción."
HELP_LINK = "\n/vincular — usar Telegram y WhatsApp con el mismo registro"
HELP_COORDINATOR = (
    "\n\nCoordinación:\n/miembros — socios y solicitudes por aprobar\n/anuncio — enviar un anuncio\n"
    "/reunion — convocar una reunión (una vez o que se repite)\n/asistencia — quién viene\n"
    "/recordatorios — cuándo se recuerdan las reuniones\n"
    "/convocatoria — publicar un fondo"
)
NOT_UNDERSTOOD = "No te entendí 🙈."
WHATSAPP_ANSWER_WITH_NUMBER = "Responde con el número de tu opción."
# On WhatsApp options are a numbered list, not buttons: these phrases read differently there
# (bot/whatsapp.py `render` swaps them in any text, queued or replied).
WHATSAPP_WORDING = {
    # WhatsApp has no silent messages: there they come as any other.
    "y, sin sonido, los avisos": "y los avisos",
    "Toca una opción": "Elige una opción",
    "toca «✏️ Otras horas» en el que quieras cambiar": (
        "escribe el número de «✏️ Otras horas» del barrio que quieras cambiar"
    ),
    "Ese botón ya no sirve.": "Esa opción ya no sirve.",
    "Ese botón no es válido.": "Esa opción no es válida.",
    ", tocando un botón o escribiendo su número": " escribiendo su número",
    "Toca «Registrarme» 👇": "Escribe el número de «Registrarme» 👇",
    "Toca 📎 y «Ubicación»": "Toca 📎 (o +) y «Ubicación»",
    "Tócalo en el que quieras, o escribe su número:": "Escribe el número del que quieras:",
    "Tócalo en el que quieras, o escribe /": "Escribe /",
    "arriba. Tócalo en el que quieras.": "arriba. Escribe el número de tu opción en el último.",
}
# WhatsApp cannot carry a calendar or a JSON file: it gets a link to the bot's own copy.
WHATSAPP_FILE_LINK = "📎 {name}\nÁbrelo aquí (el enlace dura {valid}):\n{url}"
WHATSAPP_FILE_VALID = {"hour": "1 hora", "week": "7 días"}
WHATSAPP_FILE_FAILED = "📎 No pude preparar el archivo «{name}». Intenta de nuevo en un rato. 🙏"
CANCELLED = "Listo, lo dejamos hasta ahí."
NOTHING_TO_CANCEL = "No había nada que cancelar."

# --- bad input -----------------------------------------------------------------------------
EDITED_MESSAGE = "Vi que editaste un mensaje. No puedo leer cambios: escríbelo de nuevo, por favor."
STALE_BUTTON = "Ese botón ya no sirve. Sigamos desde aquí 👇"
INVALID_BUTTON = "Ese botón no es válido."
TEXT_NEEDED = "Necesito que me lo escribas con letras, por favor. ✍️"
MEDIA_UNEXPECTED = "Recibí tu archivo, pero por ahora solo leo mensajes de texto."
TOO_LONG = "Es muy largo: escribe hasta {limit} letras, por favor."
TOO_SHORT = "Es muy corto: escribe al menos {limit} letras, por favor."
LETTERS_NEEDED = "Escríbelo con letras, por favor (no solo emojis o números)."
NOT_AN_ANSWER = (
    "«{value}» no me sirve como respuesta aquí. Escribe lo que te pregunté, "
    "o «cancelar» para dejarlo. 🙂"
)
CHOOSE_FROM_OPTIONS = "Elige una de las opciones, tocando un botón o escribiendo su número."
WHICH_OPTION = "¿Cuál de estas?"
SAME_LABEL_TWICE = (
    "«{label}» está en varios mensajes de arriba. Tócalo en el que quieras, o escribe su "
    "número: {numbers}."
)
SAME_LABEL_ON_NOTICES = (
    "«{label}» está en varios avisos de arriba. Tócalo en el que quieras, o escribe "
    "/{command} para verlos en una lista."
)
SAME_LABEL_ON_NOTICES_TAP = "«{label}» está en varios avisos de arriba. Tócalo en el que quieras."
GROUP_GO_PRIVATE = "¡Hola! 👋 Para registrarte o ver tus datos, escríbeme por privado: {link}"
ERROR_OURS = "Uy, algo falló de nuestro lado. Intenta de nuevo en un rato, por favor. 🙏"
MISSED_MESSAGE = (
    "Perdón, se me pasó tu último mensaje: llegó cuando no estaba funcionando. 🙏 "
    "¿Me lo mandas de nuevo?"
)

# --- registration --------------------------------------------------------------------------
WELCOME = "¡Hola! 👋 Soy Barrio Conecta, el bot de los barrios comerciales."
WELCOME_BARRIO = "¡Hola! 👋 Soy Barrio Conecta. Te invitaron a unirte a {barrio} ({comuna})."
REGISTRATION_INTRO = "Te inscribo en pocos pasos. Puedes escribir /cancelar cuando quieras."
REGISTRATION_LINK_HINT = (
    "¿Ya te registraste por Telegram o WhatsApp? Escribe VINCULAR y usa ese registro."
)
ASK_NAME = "¿Cómo te llamas? Escribe tu nombre."
ASK_BUSINESS = "Gracias, {name}. ¿Cómo se llama tu negocio?"
ASK_CATEGORY = "¿Cuál es el rubro de tu negocio?"
ASK_BARRIO = "¿En qué barrio comercial está tu negocio? Si no lo ves, escribe tu comuna."
# A barrio typed at the list that is not on it because of the person's own standing there.
NOT_OFFERED_BECAUSE = {
    "active": "Ya eres parte de {barrio}. Estos son los otros barrios:",
    "pending": "Tu solicitud a {barrio} espera respuesta. Estos son los otros barrios:",
    "rejected": (
        "La coordinación de {barrio} no aprobó tu solicitud (en /barrio ves el motivo). "
        "Estos son los otros barrios:"
    ),
    "removed": "La coordinación de {barrio} te sacó del barrio. Estos son los otros barrios:",
}
BARRIO_NOT_FOUND = (
    "No encontré barrios con «{query}». Si el tuyo no está, aún no participa en Barrio "
    "Conecta. Estos son todos:"
)
BARRIO_FILTERED = "Barrios que coinciden con «{query}»:"
NO_BARRIOS = (
    "Todavía no hay barrios abiertos en Barrio Conecta. "
    "Pide el enlace de invitación a tu coordinador(a)."
)
ASK_CONSENT = (
    "Último paso 🙌\n"
    "Para coordinar {barrio} guardamos tu nombre, tu negocio y su rubro; "
    "tu dirección y teléfono, solo si los agregas.\n"
    "Los ven la coordinación del barrio, Sercotec en sus informes de participación y los socios "
    "en el directorio (salvo que elijas «sin directorio»; dirección y teléfono, solo si los muestras).\n"
    "Si mandas una alerta de seguridad, llega a todo el barrio con tu nombre.\n"
    "Con /misdatos ves todo lo que guardamos, y con /baja lo borras.\n\n¿Aceptas?"
)
# Joining one more barrio shows the person to one more coordination and directory: asked first.
JOIN_CONFIRM = (
    "¿Pido tu ingreso a {barrio} ({comuna})?\n"
    "Su coordinación verá tu nombre, tu negocio y su rubro, y los socios te verán en su "
    "directorio si estás en él (lo cambias en /perfil)."
)
JOIN_CONFIRM_YES = "✅ Sí, pedir ingreso"
JOIN_CONFIRM_NO = "No, gracias"
JOIN_DECLINED = "Listo, no pedí nada."
CONSENT_YES = "✅ Acepto"
CONSENT_HIDDEN = "Acepto, sin directorio"
CONSENT_NO = "❌ No acepto"
CONSENT_DECLINED = (
    "Entendido: no guardé ninguno de tus datos. Si cambias de opinión, escribe /registro."
)
REGISTERED_ACTIVE = "¡Listo, {name}! Ya eres parte de {barrio}. 🎉"
REGISTERED_PENDING = (
    "¡Gracias, {name}! Tu solicitud para unirte a {barrio} quedó enviada. "
    "Te aviso apenas la coordinación responda. ⏳"
)
INVITE_UNKNOWN = (
    "No encontré ese código de invitación 🤔. Revisa el enlace del afiche, "
    "o regístrate y elige tu barrio de la lista."
)
ALREADY_REGISTERED = "Ya tienes tu registro, {name}. Usa /perfil para ver o cambiar tus datos."
ALREADY_IN_BARRIO = "Ya eres parte de {barrio}."
ALREADY_PENDING = "Tu solicitud para {barrio} ya está enviada. Te aviso apenas respondan. ⏳"
JOIN_REQUESTED = "Listo: pedí tu ingreso a {barrio}. Te aviso cuando la coordinación responda. ⏳"
JOINED = "¡Listo! Ya eres parte de {barrio}. 🎉"
# A barrio without coordination in the bot: the deployment's team answers its requests…
REGISTERED_PENDING_TEAM = (
    "¡Gracias, {name}! Tu solicitud para unirte a {barrio} quedó enviada. Como el barrio aún "
    "no tiene coordinación en el bot, la revisará el equipo de Barrio Conecta. Te aviso apenas "
    "responda. ⏳"
)
JOIN_REQUESTED_TEAM = (
    "Listo: pedí tu ingreso a {barrio}. Como aún no tiene coordinación en el bot, la revisará "
    "el equipo de Barrio Conecta. Te aviso cuando responda. ⏳"
)
# …or, with no team configured either, nobody could: it takes no requests yet.
BARRIO_NOT_TAKING_REQUESTS = (
    "{barrio} todavía no tiene coordinación en el bot, así que aún no puede recibir "
    "solicitudes. Pídele a tu coordinador(a) que se inscriba aquí; cuando lo haga, abre de "
    "nuevo el enlace del barrio y pediré tu ingreso."
)
REGISTER_WITHOUT_REQUEST = (
    "{barrio} todavía no tiene coordinación en el bot, así que aún no puede recibir "
    "solicitudes. Igual puedes registrarte ahora: cuando tenga coordinación, abre de nuevo "
    "este enlace y pediré tu ingreso."
)
REGISTERED_WITHOUT_BARRIO = (
    "¡Listo, {name}! Quedó tu registro, pero aún no pude pedir tu ingreso a {barrio}: "
    "todavía no tiene coordinación en el bot. Pídele a tu coordinador(a) que se inscriba aquí; "
    "cuando lo haga, abre de nuevo el enlace del barrio."
)
NOT_REGISTERED = "Primero necesito inscribirte. Toca «Registrarme» 👇"
NOT_ACTIVE = "Esto se abre cuando tu ingreso al barrio esté aprobado. ⏳"

# --- approvals -----------------------------------------------------------------------------
APPROVE = "✅ Aprobar"
REJECT = "❌ Rechazar"
JOIN_REQUEST = (
    "Nueva solicitud para {barrio}:\n👤 {name}\n🏪 {business} ({category})\n¿La apruebas?"
)
APPROVED_FOR_COORDINATOR = "Aprobaste a {name}. Ya es parte de {barrio}. ✅"
REJECTED_FOR_COORDINATOR = "Rechazaste la solicitud de {name} para {barrio}."
APPROVED_FOR_MEMBER = "¡Buenas noticias! 🎉 Ya eres parte de {barrio}. Escribe /directorio para conocer a tus vecinos."
# Nobody else listed yet: /directorio would say it is empty.
APPROVED_FIRST_FOR_MEMBER = (
    "¡Buenas noticias! 🎉 Ya eres parte de {barrio}. Eres de los primeros en el bot: cuando "
    "se sumen más vecinos, los verás en /directorio."
)
# Rejecting takes one tap on a reason (or "Sin motivo"); until then the request stays open.
REJECT_ASK_REASON = (
    "¿Por qué no apruebas a {name} en {barrio}? Al elegir un motivo, la solicitud queda "
    "rechazada y le aviso con ese motivo."
)
# Keys are stored (`Membership.rejection_reason`): the coordinator's button, and the words
# the applicant reads after "Motivo:".
REJECTION_REASONS = {
    "no_business": "No tiene negocio en este barrio",
    "missing_data": "Faltan datos del negocio",
    "duplicate": "Ya tiene otro registro en el barrio",
}
REJECTION_REASON_WORDS = {
    "no_business": "tu negocio no está en este barrio",
    "missing_data": "faltan datos de tu negocio",
    "duplicate": "ya hay otro registro tuyo en el barrio",
}
REJECT_WRITE_REASON = "✏️ Escribir otro motivo"
REJECT_WITHOUT_REASON = "Sin motivo"
REJECT_CALL_OFF = "↩️ No rechazar"
REJECT_ASK_NOTE = (
    "Escribe el motivo en pocas palabras (hasta {limit} letras). Se lo envío a {name} tal cual."
)
REJECT_CONFIRM_NOTE = "¿Rechazo la solicitud de {name} a {barrio} con este motivo?\n«{note}»"
REJECT_CONFIRM_YES = "Sí, rechazar"
REJECT_REWRITE = "✏️ Escribirlo de nuevo"
REQUEST_KEPT = "No rechacé nada: la solicitud sigue pendiente."
REJECTED_REASON_TOLD = "\nMotivo que le conté: {reason}"
REJECTED_NO_REASON_TOLD = "\nLe avisé sin motivo."
REJECTED_CONTACT_HINT = (
    "\n\n📞 Aún no dejas un contacto para vecinos. Con él, quien no fue aprobado puede "
    "conversarlo contigo: agrégalo en /barrio."
)
REJECTED_FOR_MEMBER = "La coordinación de {barrio} no aprobó tu solicitud."
REJECTED_BY_TEAM = "El equipo de Barrio Conecta no aprobó tu solicitud para {barrio}."
REJECTION_TEAM_NOTE_LINE = "Motivo, en palabras del equipo: «{note}»"
REJECTION_TEAM_NO_CONTACT = (
    "Si crees que es un error, cuéntaselo a Sercotec o a quien organiza tu barrio comercial."
)
REJECTION_REASON_LINE = "Motivo: {reason}."
REJECTION_NOTE_LINE = "Motivo, en palabras de la coordinación: «{note}»"
REJECTION_CONTACT = "Si quieres conversarlo, la coordinación dejó este contacto:"
REJECTION_NO_CONTACT = (
    "La coordinación aún no ha dejado un contacto en el bot. Si crees que es un error, "
    "pregunta en tu barrio quién coordina, o cuéntaselo a Sercotec."
)
REJECTION_WAY_OUT = "Si tu negocio está en otro barrio comercial, puedes pedir ingreso ahí 👇"
ASK_OTHER_BARRIO = "🏘️ Pedir ingreso a otro barrio"
ALREADY_DECIDED = "Esa solicitud ya estaba resuelta ({status})."
REQUEST_GONE = "Esa solicitud ya no existe."
STATUS_WORDS = {
    "pending": "pendiente",
    "active": "aprobada",
    "rejected": "rechazada",
    "left": "retirada",
    "removed": "quitada por la coordinación",
}
COORDINATORS_ONLY = "Esta opción es solo para la coordinación del barrio."
MEMBERS_HEADER = "👥 {barrio} — socios activos: {count}"
MEMBERS_LINE = "• {name} — {business} ({category})"
MEMBERS_MORE = "… y {count} más. Para la lista completa: barrio export members."
PENDING_NONE = "No hay solicitudes pendientes en {barrio}."
REJECTED_LIST = "❌ No aprobadas ({count})"
REJECTED_HEADER = (
    "Solicitudes que no se aprobaron en {barrio}: {count}. Si lo conversaron y cambia la "
    "decisión, apruébala aquí 👇"
)
REJECTED_LINE = "❌ {name} — {business} ({category})\nMotivo: {reason}"
REJECTED_WITHOUT_REASON = "sin motivo"
REJECTED_SHOWN = "\nTe muestro las {shown} más recientes."
REJECTED_LIST_BELOW = "Las solicitudes que no se aprobaron, por si cambia la decisión 👇"
REJECTED_NONE = "No hay solicitudes no aprobadas en {barrio}."
APPROVE_AFTER_ALL = "✅ Aprobar ahora"
PENDING_HEADER = "⏳ Solicitudes por aprobar en {barrio}: {count}"
# To an administrator, about a barrio without coordination in the bot.
JOIN_REQUEST_UNREACHED_COORDINATION = (
    "Nueva solicitud para {barrio} ({comuna}). Su coordinación no recibe mensajes del bot "
    "(lo bloqueó o no lo ha vuelto a abrir), así que te llega a ti:\n"
    "👤 {name}\n🏪 {business} ({category})\n¿La apruebas?"
)
JOIN_REQUEST_NO_COORDINATION = (
    "Nueva solicitud para {barrio} ({comuna}), que aún no tiene coordinación en el bot:\n"
    "👤 {name}\n🏪 {business} ({category})\n¿La apruebas?"
)
# To a barrio's first coordinator, before the requests that were waiting.
PENDING_FORWARDED = "🧭 Ahora coordinas {barrio}. Solicitudes que esperaban respuesta: {count}"
PENDING_FORWARDED_MORE = "\nTe muestro las primeras {shown}; las demás, con /miembros."
# To the administrators, when a barrio's last coordinator leaves with requests still waiting.
PENDING_ORPHANED = (
    "🧭 {barrio} se quedó sin coordinación en el bot. Solicitudes que esperan respuesta: {count}"
)
# An administrator's /miembros: the requests of barrios without coordination.
ADMIN_PENDING_NONE = "No hay solicitudes esperando en barrios sin coordinación."
ADMIN_PENDING_MORE = (
    "Te muestro {shown} de {count}. Responde estas y escribe /miembros para ver más."
)

# --- removing a member (/miembros) -----------------------------------------------------------
REMOVE_MEMBER = "🚪 Quitar a un socio"
REMOVE_PICK = "¿A quién quieres quitar de {barrio}?"
REMOVE_PICK_LINE = "{name} · {business}"
PAGE_OF = " (página {page} de {pages})"
PAGE_PREVIOUS = "◀️ Anteriores"
PAGE_NEXT = "Más ▶️"
REMOVE_CONFIRM = "¿Quitar a {name} de {barrio}? Dejará de recibir los avisos del barrio."
YES_REMOVE = "Sí, quitar"
REMOVE_KEPT = "Listo, no quité a nadie."
REMOVE_NONE = "En {barrio} no hay socios que puedas quitar desde aquí."
REMOVE_GONE = "Esa persona ya no está en el barrio."
REMOVE_SELF = "Desde aquí no puedes quitarte a ti: para salir del barrio, usa /baja."
REMOVE_NOT_ACTIVE = "{name} no está entre los socios de {barrio}."
REMOVE_COORDINATOR = (
    "{name} es parte de la coordinación: no se puede quitar desde aquí. "
    "Eso lo ve el equipo de Barrio Conecta."
)
REMOVED_DONE = "Listo: {name} ya no es parte de {barrio}. Le avisé."
REMOVED_NO_MORE_NOTICES = "Ya no te llegarán sus avisos."
# Without the remover's name: the notice outlives their erasure.
MEMBER_REMOVED_FOR_COORDINATORS = "La coordinación quitó a {name} de {barrio}."
# What someone removed reads in /barrio and from the barrio's link: no new request goes.
REMOVED_FROM_BARRIO = "La coordinación de {barrio} te quitó del barrio."
REMOVED_NO_REQUEST = "Por eso no puedo pedir tu ingreso de nuevo."

# --- barrio --------------------------------------------------------------------------------
BARRIO_CARD = (
    "🏘️ {name}\n📍 {comuna}, {region}\n👥 Socios activos: {count}\n"
    "🧭 Coordinación: {coordinators}\n{status}"
)
NO_COORDINATORS = "aún sin coordinador(a)"
MEMBERSHIP_WORDS = {
    "pending": "⏳ Tu ingreso espera aprobación",
    "active": "✅ Participas en este barrio",
    "coordinator": "🧭 Coordinas este barrio",
}
NO_BARRIO = "Aún no eres parte de un barrio."
# Someone whose every request was turned down, or who left: what happened, and a way in.
NO_BARRIO_REGISTERED = "Ya tienes tu registro, {name}, pero aún no eres parte de un barrio."
BARRIO_LEFT_LINE = "🚪 Saliste de {barrio}."
WAY_IN = "Puedes pedir ingreso a un barrio comercial 👇"
ASK_A_BARRIO = "🏘️ Pedir ingreso a un barrio"
NO_OTHER_BARRIO = (
    "No hay otro barrio en Barrio Conecta al que puedas pedir ingreso. "
    "Si tu barrio aún no está, cuéntale a Sercotec."
)
# Member-only commands for someone who is in no barrio (pending people read NOT_ACTIVE).
# {what}: what is closed to them, THIS_FEATURE unless said (an alert says what waits).
THIS_FEATURE = "Esto"
NOT_ACTIVE_REJECTED = (
    "{what} es para socios de un barrio, y la coordinación de {barrios} no aprobó tu "
    "solicitud. En /barrio ves el motivo, y puedes pedir ingreso a otro barrio."
)
NOT_ACTIVE_NO_BARRIO = (
    "{what} es para socios de un barrio, y ahora no eres parte de ninguno. "
    "Puedes pedir ingreso a uno 👇"
)
AND = " y "
OR = " o "
# A coordinator's contact for the barrio's members and applicants (`/barrio`).
CONTACT_LINE = "📞 {contact}"
BARRIO_CONTACTS = "\n📞 Contacto de la coordinación: {contacts}"
CONTACT_BUTTON = "📞 Contacto para vecinos"
CONTACT_ASK = (
    "📞 Tu contacto para vecinos de {barrio}: {current}\n"
    "Lo ven los socios en /barrio, y quien pida entrar y no sea aprobado. "
    "Escribe un teléfono o un texto corto (ej: «Carmen, 9 1234 5678, de lunes a viernes»)."
)
CONTACT_NONE = "aún no dejas uno"
CONTACT_BAD = "Escribe un teléfono (ej: 9 1234 5678) o un texto corto con letras, por favor."
CONTACT_SAVED = "Listo ✅ Tu contacto para vecinos de {barrio}: {contact}"
CONTACT_CLEARED = "Listo: ya no muestro un contacto tuyo en {barrio}."
# An erased coordinator's contact, where a message sent before still quoted it.
CONTACT_ERASED = "—"

# --- directory -----------------------------------------------------------------------------
DIRECTORY_ASK = (
    "En el directorio hay {count} negocios. ¿Qué buscas? Escribe un nombre, un negocio o un "
    "rubro (ej: pan), o elige 👇"
)
DIRECTORY_EVERYONE = "📒 Negocios del directorio ({count}):"
DIRECTORY_NARROW = "Para buscar, escribe un nombre, un negocio o un rubro, o elige uno 👇"
DIRECTORY_EMPTY = (
    "Todavía no hay negocios en el directorio de tu barrio. Cuando más socios se inscriban, "
    "los vas a ver aquí."
)
DIRECTORY_ALL = "👥 Ver todos ({count})"
DIRECTORY_PAGE = "👥 Negocios del directorio, del {first} al {last} de {count}:"
DIRECTORY_NEXT = "➡️ Ver más"
DIRECTORY_PAGE_GONE = "Esa página ya no existe: el directorio cambió. Así está ahora 👇"
DIRECTORY_HEADER = "🔎 Resultados para «{query}»: {count}"
DIRECTORY_LINE = "• {business} — {name} · {category}"
DIRECTORY_PHONE = "\n   📞 {phone}"
DIRECTORY_ADDRESS = "\n   📍 {address}"
DIRECTORY_NONE = (
    "No encontré negocios con «{query}» en tu barrio. Prueba con otra palabra o elige un rubro 👇"
)
DIRECTORY_RUBRO_EMPTY = "Ahora no hay negocios de «{rubro}» en el directorio."
DIRECTORY_MORE = "… y {count} más. Escribe algo más preciso."

# --- profile -------------------------------------------------------------------------------
PROFILE = (
    "👤 Tus datos:\nNombre: {name}\nNegocio: {business}\nRubro: {category}\n"
    "Dirección: {address}\nTeléfono: {phone}\n\nEn el directorio: {visibility}"
)
NOT_GIVEN = "—"
VISIBILITY_HIDDEN = "no apareces"
VISIBILITY_BASE = "nombre, negocio y rubro"
VISIBILITY_PHONE = "teléfono"
VISIBILITY_ADDRESS = "dirección"
EDIT_NAME = "✏️ Nombre"
EDIT_BUSINESS = "✏️ Negocio"
EDIT_CATEGORY = "✏️ Rubro"
EDIT_ADDRESS = "✏️ Dirección"
EDIT_PHONE = "✏️ Teléfono"
TOGGLE_DIRECTORY_ON = "👁️ Aparecer en directorio"
TOGGLE_DIRECTORY_OFF = "🙈 No aparecer en directorio"
TOGGLE_PHONE_ON = "📞 Mostrar teléfono"
TOGGLE_PHONE_OFF = "📞 Ocultar teléfono"
TOGGLE_ADDRESS_ON = "📍 Mostrar dirección"
TOGGLE_ADDRESS_OFF = "📍 Ocultar dirección"
ASK_NEW_NAME = "Escribe tu nombre como quieres que aparezca."
ASK_NEW_BUSINESS = "Escribe el nombre de tu negocio."
ASK_NEW_ADDRESS = "Escribe la dirección de tu negocio (calle y número)."
ASK_NEW_PHONE = "Escribe tu teléfono, por ejemplo 9 1234 5678."
USE_WHATSAPP_PHONE = "📱 Usar mi WhatsApp ({phone})"
CLEAR_VALUE = "🗑️ Quitar"
# "Mostrar teléfono" tapped before there is one: it is asked for, and shows once written.
SHOW_NEEDS_VALUE = {
    "phone": "Aún no has puesto tu teléfono. Escríbelo y lo muestro en el directorio.",
    "address": "Aún no has puesto tu dirección. Escríbela y la muestro en el directorio.",
}
BAD_PHONE = "Ese teléfono no me sirve. Escríbelo así: 9 1234 5678 (9 dígitos)."
PROFILE_SAVED = "Guardado ✅"

# --- leaving -------------------------------------------------------------------------------
LEAVE_ASK = "¿Qué quieres hacer?"
LEAVE_BARRIO = "🚪 Salir de {barrio}"
ERASE_ALL = "🗑️ Borrar todos mis datos"
KEEP = "Nada, volver"
LEAVE_CONFIRM = "¿Seguro que quieres salir de {barrio}? Dejarás de recibir sus avisos."
ERASE_CONFIRM = (
    "¿Seguro? Voy a borrar tu nombre, negocio, rubro, dirección y teléfono, "
    "y te sacaré de todos tus barrios. No se puede deshacer."
)
YES_LEAVE = "Sí, salir"
YES_ERASE = "Sí, borrar todo"
NO_KEEP = "No"
LEFT = (
    "Saliste de {barrio}. Si quieres volver, desde mañana a esta hora puedes pedirlo con el "
    "enlace del barrio."
)
ERASED = (
    "Listo. Borré tus datos: nombre, negocio, rubro, dirección, teléfono, "
    "tus inscripciones en barrios ({count}) y los mensajes pendientes para ti. "
    "Si quieres volver, escribe /registro."
)
KEPT = "Perfecto, no cambié nada."

# --- announcements -------------------------------------------------------------------------
ANNOUNCE_WHICH_BARRIO = "¿A qué barrio va el anuncio?"
ALL_MY_BARRIOS = "Todos mis barrios ({count})"
ANNOUNCE_ASK = (
    "Escribe el anuncio. Puedes mandar una foto con el texto abajo. (/cancelar para salir)"
)
ANNOUNCE_TOO_LONG = "El anuncio es muy largo: hasta {limit} letras, por favor."
ANNOUNCE_PREVIEW = "Así se verá tu anuncio 👇"


def people(count: int, many: str = "socios") -> str:
    """How many people a message reaches: "3 socios" (or `many`), and "1 persona", which fits
    anyone."""
    return "1 persona" if count == 1 else f"{count} {many}"


ANNOUNCE_CONFIRM = "Llegará a {people} de {barrios}. ¿Lo envío?"
ANNOUNCE_SEND = "📣 Enviar"
ANNOUNCE_EDIT = "✏️ Cambiar texto"
CANCEL = "Cancelar"
ANNOUNCE_QUEUED = "Enviando a {people}. Te aviso aquí cuando termine, con cuántos lo recibieron. 📬"
ANNOUNCE_PROGRESS = "📬 Tu anuncio anterior va en {done} de {total} (✅ {sent} entregados)."
ANNOUNCE_NOBODY = "Todavía no hay otros socios activos en {barrios}: no hay a quién enviarle."
ANNOUNCEMENT_HEADER = "📣 Anuncio de {barrio}:\n\n{text}"
ANNOUNCE_REPORT = (
    "📣 Tu anuncio ya salió.\n✅ Entregados: {sent}\n❌ No se pudo: {failed}\n"
    "📵 Sin contacto (bloquearon el bot): {unreachable}\n❔ Sin confirmar: {ambiguous}"
)
EXPECT_TEXT_OR_PHOTO = "Necesito el texto del anuncio (o una foto con texto)."

# --- security alerts -----------------------------------------------------------------------
ALERT_KINDS = {
    "robo": "🚨 Robo",
    "asalto": "⚠️ Asalto",
    "sospechoso": "👀 Persona sospechosa",
    "incendio": "🔥 Incendio",
    "accidente": "🚑 Accidente",
    "otro": "❗ Otra emergencia",
}
# The alert as named inside a sentence ("✅ Resuelta: la alerta de robo…"): "de otro" would
# read as someone else's alert.
ALERT_NAMED = {
    "robo": "la alerta de robo",
    "asalto": "la alerta de asalto",
    "sospechoso": "la alerta por una persona sospechosa",
    "incendio": "la alerta de incendio",
    "accidente": "la alerta de accidente",
    "otro": "la alerta (otra emergencia)",
}
EMERGENCY_NUMBERS = "📞 Carabineros 133 · Bomberos 132 · SAMU 131 · PDI 134"
ALERT_WHICH_BARRIO = "¿En qué barrio pasa?"
ALERT_EMERGENCY_FIRST = "🚨 Si hay peligro ahora, llama:\n" + EMERGENCY_NUMBERS
ALERT_AFTER_APPROVAL = (
    "Avisar a todo el barrio por aquí se abre cuando aprueben tu ingreso. ⏳ "
    "Mientras, llama a esos números."
)
ALERT_TO_THE_BARRIO = "Avisar a todo el barrio por aquí"
ALERT_MEMBERS_ONLY = ALERT_TO_THE_BARRIO + " es para socios inscritos en un barrio."
ALERT_ASK_KIND = (
    "¿Qué está pasando? Si hay peligro ahora, llama primero al 133.\n" + EMERGENCY_NUMBERS
)
ALERT_ASK_DESCRIPTION = (
    "Cuenta en pocas palabras qué pasa y dónde (ej: «forzaron la reja del local 12, "
    "calle Estado»). Describe lo que ocurre, no a las personas."
)
ALERT_ASK_LOCATION = "¿Quieres compartir tu ubicación? Toca 📎 y «Ubicación», o sigue sin ella."
ALERT_NO_LOCATION = "Seguir sin ubicación"
ALERT_CONFIRM = "Vas a alertar a {people} de {barrio}:\n\n{preview}\n\n¿La envío?"
ALERT_SEND = "🚨 Enviar alerta"
ALERT_SENT = "Alerta enviada a {people} de {barrio}. 🙏\n" + EMERGENCY_NUMBERS
ALERT_MESSAGE = (
    "{kind} en {barrio}\n{description}{where}\nAvisó: {author} ({business})\n\n" + EMERGENCY_NUMBERS
)
ALERT_WHERE = "\n📍 https://maps.google.com/?q={lat:.5f},{lon:.5f}"
ALERT_LIMIT = (
    "Ya enviaste {limit} alertas en la última hora, y no puedo mandar más por ahora. "
    "Si es una emergencia, llama al 133 (Carabineros). 🙏"
)
ALERT_RESOLVE = "✅ Resuelta"
ALERT_FALSE = "🟡 Falsa alarma"
ALERT_CLOSED = {
    "resolved": "✅ Resuelta: {alert} en {barrio} ({when}) ya está controlada.",
    "false_alarm": "🟡 Falsa alarma: {alert} en {barrio} ({when}) no era real. Gracias por estar alerta.",
}
ALERT_ALREADY_CLOSED = "Esa alerta ya estaba cerrada."
ALERT_CLOSED_FOR_COORDINATOR = "Listo: avisé a quienes la recibieron ({count})."

# --- quiet hours ---------------------------------------------------------------------------
QUIET_NOW = "🌙 Horario de silencio: {current}.\nEn ese horario solo te llegan las alertas de seguridad y, sin sonido, los avisos que no pueden esperar (una solicitud para unirse, su respuesta). Anuncios, reuniones y recordatorios esperan a la mañana.\nToca una opción o escribe tu horario (ej: «de 20 a 8»)."
QUIET_OFF = "sin horario de silencio"
QUIET_RANGE = "de {start} a {end}"
QUIET_CHOICES = {
    "1320-480": "22:00 a 08:00",
    "1260-540": "21:00 a 09:00",
    "1380-420": "23:00 a 07:00",
    "off": "Sin silencio",
}
QUIET_SAVED = "Guardado ✅ Horario de silencio: {current}."
QUIET_UNCLEAR = "No entendí el horario 🤔. Toca una opción o escríbelo así: «de 20 a 8»."

# --- one person on two channels (/vincular) ------------------------------------------------
LINK_ONE_CHANNEL = "Por ahora Barrio Conecta funciona solo por este canal: no hay otro que unir."
LINK_ASK_CODE = (
    "🔗 ¿Ya te registraste en Barrio Conecta por otro canal? Allá escribe VINCULAR y te doy "
    "un código de 6 números. Escríbelo aquí."
)
LINK_CODE_DIGITS = (
    "El código son 6 números, por ejemplo 482913. Escríbelo aquí, o escribe CANCELAR."
)
LINK_CODE = (
    "🔗 Tu código es {code} y vale {minutes} minutos.\n"
    "Abre Barrio Conecta en {other} y escribe:\nVINCULAR {code}\n"
    "Así usas el mismo registro en los dos, sin recibir nada repetido."
)
LINK_BAD_CODE = (
    "Ese código no sirve o ya venció. 🤔 Pide uno nuevo escribiendo VINCULAR en el canal "
    "donde ya estás registrado(a)."
)
LINK_TOO_MANY = "Probaste muchos códigos. Espera {minutes} minutos y pide uno nuevo, por favor."
LINK_ALREADY_SAME = "Este canal ya está unido a tu registro. ✅"
LINK_HAS_OWN_REGISTRATION = (
    "Este canal ya tiene su propio registro. Para usar el otro, primero borra este con "
    "BAJA (opción «borrar todo») y luego escribe aquí VINCULAR con el código."
)
LINK_CHANNEL_TAKEN = (
    "Tu registro ya tiene un {channel} unido. Para cambiarlo, escribe VINCULAR allá y "
    "desvincúlalo primero."
)
LINK_DONE = (
    "¡Listo, {name}! ✅ Este {channel} quedó unido a tu registro. "
    "¿Por dónde quieres recibir los avisos del barrio? Te llegan por uno solo."
)
LINK_DONE_ELSEWHERE = (
    "🔗 Tu registro quedó unido también a {channel}. Si no fuiste tú, escribe VINCULAR "
    "y desvincúlalo."
)
LINK_RECEIVE_ON = "📲 Recibir avisos por {channel}"
LINK_UNLINK = "✂️ Desvincular {channel}"
LINK_STATUS = "🔗 Tu registro está en {channels}. Los avisos del barrio te llegan por {channel}."
LINK_PREFERENCE_SAVED = "Listo: los avisos del barrio te llegarán por {channel}. 📲"
LINK_UNLINK_CONFIRM = "¿Desvincular {channel}? Ya no te llegará nada por ahí."
LINK_UNLINK_YES = "Sí, desvincular"
LINK_UNLINK_NO = "No, dejarlo así"
LINK_UNLINKED = "Listo. {channel} ya no está unido a tu registro."

# --- meetings ------------------------------------------------------------------------------
MEETING_WHICH_BARRIO = "¿Para qué barrio es la reunión?"
MEETING_ASK_TITLE = "¿Cómo se llama la reunión? (ej: «Reunión mensual de socios»)"
MEETING_ASK_NEW_WHEN = (
    "¿Cuál es la nueva fecha de {meeting}? Escribe el día y la hora, como «jueves 19:00» o "
    "«28/11 18:30»."
)
MEETING_NAMED = "«{title}» ({when})"
MEETING_MOVE_CHECK = "Entendí: {meeting} pasa a {when}. ¿Está bien?"
MEETING_ASK_WHEN = "¿Cuándo es? Escribe el día y la hora, como «jueves 19:00», «28/11 18:30» o «mañana a las 7 de la tarde»."
MEETING_WHEN_UNCLEAR = "No entendí la fecha 🤔. Prueba así: «jueves 19:00» o «28/11 18:30»."
MEETING_WHEN_PAST = "Esa fecha ya pasó. Escribe un día y hora que vengan."
# What is wrong with a date typed (handlers/when.py `why_not`), then what to type instead.
WHEN_NO_SUCH_DAY = "El {day} de {month} no existe. {Month} tiene {days} días."
WHEN_NO_SUCH_FEBRUARY_DAY = (
    "El {day} de febrero no existe. Febrero tiene 28 días (29 en año bisiesto)."
)
WHEN_NO_LEAP_DAY = "El 29 de febrero no existe en {year}: ese año febrero tiene 28 días."
WHEN_PAST = "Esa fecha ya pasó: {when}."
MEETING_WHEN_ANOTHER_DAY = "Escribe otro día y hora, como «jueves 19:00» o «28/11 18:30»."
MEETING_WHEN_AHEAD = "Escribe un día y hora que vengan."
MEETING_ASK_HOUR = "{day}, anotado. ¿A qué hora? (por ejemplo {example})"
MEETING_HOUR_UNCLEAR = (
    "No entendí la hora 🤔. Escríbela así: «19:00», «7 de la tarde» o «a las 19»."
)
MEETING_WHEN_CHECK = "Entendí: {when}. ¿Está bien?"
MEETING_WHEN_OK = "✅ Sí, está bien"
MEETING_WHEN_AGAIN = "✏️ Cambiar fecha"
MEETING_ASK_PLACE = "¿Dónde es? (ej: «Sede vecinal, Estado 123»)"
MEETING_ASK_AGENDA = "¿Cuál es el temario? Escríbelo en pocas líneas, o sigue sin temario."
MEETING_NO_AGENDA = "Sin temario"
MEETING_CARD = "📅 {title}\n🏘️ {barrio}\n🕖 {when}\n📍 {place}{agenda}"
MEETING_AGENDA = "\n📝 {agenda}"
MEETING_CONFIRM = "Así llegará la invitación a {people} 👆 ¿La envío?"
MEETING_SEND = "📨 Enviar invitación"
MEETING_SENT = "Invitación enviada a {people}. Con /asistencia ves quién viene."
MEETING_INVITE = "Te invitan a una reunión:\n\n{card}\n\n¿Vienes?"
MEETING_REPEATS = "🔁 Se repite (todas las semanas, cada mes…)"
MEETING_ASK_RULE = "¿Cada cuánto es? Escríbelo como lo dirías: «todos los jueves a las 19:00», «el primer martes de cada mes a las 19:00» o «cada 15 días, lunes 18:30»."
MEETING_RULE_CHECK = "Entendí: {rule}. Las próximas fechas:\n{dates}{note}\n\n¿Está bien?"
MEETING_RULE_SKIPS = "\nOjo: los meses que no tienen día {day} no tienen reunión."
MEETING_RULE_AGAIN = "✏️ Escribirlo de nuevo"
MEETING_RULE_FIRST_PASSED = "La primera fecha ya pasó mientras esperaba. Estas son las que vienen:"
MEETING_RULE_NO_DATES = "Esa regla no da ninguna fecha en el próximo año 🤔. Prueba con otra, como «todos los jueves a las 19:00»."
MEETING_RULE_PROBLEMS = {
    "not_understood": "No entendí cada cuánto es 🤔. Prueba así: «todos los jueves a las 19:00» o «el primer martes de cada mes a las 19:00».",
    "not_repeating": "Eso es un solo día. Para una reunión que se repite, escribe por ejemplo «todos los jueves a las 19:00».",
    "no_time": "¿A qué hora? Escríbelo con la hora, como «todos los jueves a las 19:00».",
    "no_day": "¿Qué día? Escríbelo con el día, como «cada dos semanas, el lunes a las 18:30».",
    "no_such_day": "Ese día no existe en ningún mes. Escribe un día del 1 al 31, como «el 15 de cada mes a las 19:00».",
    "not_whole_weeks": "Cada cuántos días no me calza con un día de la semana. Prueba con «cada 15 días, lunes 18:30» o «cada semana».",
    "daily": "Una reunión todos los días es mucho 🙂. Escribe el día de la semana, como «todos los jueves a las 19:00».",
}
MEETING_REPEATS_LINE = "\n🔁 Se repite {rule}"
MEETING_SERIES_INVITE = "Te invitan a una reunión que se repite {rule}. La primera:\n\n{card}\n\n¿Vienes? Antes de cada fecha te recuerdo y puedes responder."
MEETING_SERIES_SENT = "Invitación enviada a {people}. Fechas ya agendadas: {dates}; las siguientes se agregan solas. Con /asistencia ves quién viene y puedes cambiar o cancelar una fecha."
MEETING_END_SERIES = "⏹️ Terminar la serie"
MEETING_END_SERIES_CONFIRM = "¿Termino «{title}», que se repite {rule}? Se cancelan todas las fechas que vienen y aviso una vez a los invitados."
MEETING_END_SERIES_YES = "Sí, terminarla"
MEETING_SERIES_ENDED_NOTICE = (
    "⏹️ La reunión «{title}», que se repetía {rule}, terminó: las próximas fechas quedan canceladas."
)
MEETING_SERIES_ENDED = "Serie terminada. Fechas canceladas: {dates}. Invitados avisados: {count}."
RSVP_YES = "✅ Asistiré"
RSVP_NO = "❌ No podré"
RSVP_MAYBE = "🤔 Tal vez"
RSVP_LABELS = {"yes": "Asistiré", "no": "No podré", "maybe": "Tal vez"}
RSVP_SAVED = "Anotado: {answer}. Puedes cambiar tu respuesta en /reuniones."
RSVP_CLOSED = "Esa reunión ya no recibe respuestas ({reason})."
RSVP_REASON_CANCELLED = "se canceló"
RSVP_REASON_PAST = "ya pasó"
CALENDAR = "📅 Agregar al calendario"
CALENDAR_FILE = "Abre el archivo para agregar la reunión a tu calendario."
MEETINGS_NONE = "No hay reuniones próximas en tus barrios."
MEETINGS_YOUR_ANSWER = "\nTu respuesta: {answer}"
MEETINGS_NO_ANSWER = "\nAún no respondes."
ATTENDANCE_NONE = "No hay reuniones próximas ni de los últimos 30 días en {barrio}."
ATTENDANCE_CALL_ONE = "📅 Convocar una reunión"
ATTENDANCE = "{card}\n\n✅ Asistirán ({yes}): {yes_names}\n🤔 Tal vez ({maybe}): {maybe_names}\n❌ No podrán ({no}): {no_names}\n⏳ Sin responder ({pending}): {pending_names}"
ATTENDANCE_UNREACHED = "\n📭 No les llegó la invitación ({count}): {names}"
MEETING_NUDGE = "🔔 Recordar a quienes no han respondido"
MEETING_NUDGED = "Listo: les recordé la reunión a quienes no han respondido ({count})."
MEETING_NUDGE_TOO_LATE = "Ahora es horario de silencio para quienes no han respondido, y no les llegaría antes de la reunión. No envié nada."
MEETING_NUDGE_TOO_SOON = "Ya les recordé hace menos de una hora. Dales un rato para responder 🙂"
MEETING_NUDGE_NOBODY = "Todos los invitados ya respondieron 🙌"
REMINDER_MEETING = "🔔 Recordatorio de reunión:\n\n{card}"
REMINDER_MEETING_UNANSWERED = "🔔 Recordatorio de reunión:\n\n{card}\n\nAún no respondes: ¿vienes?"
REMINDER_CALL = "🔔 Recordatorio: se acerca el cierre de una convocatoria.\n\n{card}"
REMINDERS_BEFORE = "{offsets} antes"
DIGEST_EXPLAINED = "📰 El resumen semanal llega los lunes a las 9:00: las reuniones de la semana con tu respuesta, las convocatorias abiertas y cuántos socios nuevos hay. Si no hay nada que contar, no llega."
DIGEST_IS_ON = "Ahora lo recibes ✅"
DIGEST_IS_OFF = "Ahora no lo recibes."
DIGEST_TURN_ON = "✅ Quiero recibirlo"
DIGEST_TURN_OFF = "🔕 No quiero recibirlo"
DIGEST_ON = "Listo: te llegará el resumen los lunes a las 9:00 📰"
DIGEST_OFF = "Listo: ya no te llegará el resumen semanal."
DIGEST_TITLE = "📰 Tu resumen de la semana"
DIGEST_MEETINGS = "📅 Reuniones:"
DIGEST_MEETING = "• {when}: {title} ({barrio}). Tu respuesta: {answer}"
DIGEST_NO_ANSWER = "aún no respondes"
DIGEST_CALLS = "💰 Convocatorias abiertas:"
DIGEST_CALL = "• {name}: {left}"
DIGEST_JOINED = "👋 Socios nuevos en los últimos 7 días: {count}"
DIGEST_FOOTER = "Para dejar de recibir este resumen: /resumen"
REMINDERS_NONE = "sin recordatorios"
REMINDERS_NOW = (
    "🔔 Recordatorios de las reuniones de {barrio}: {current}.\n¿Cuándo quieres que se recuerden?"
)
REMINDER_PRESETS = {
    "24-2": "24 h y 2 h antes (recomendado)",
    "2": "Solo 2 h antes",
    "24": "Solo 24 h antes",
    "48-3": "48 h y 3 h antes",
    "0": "Sin recordatorios",
}
REMINDER_TYPE_HOURS = "✏️ Otras horas"
REMINDER_ASK_HOURS = "Escribe cuántas horas antes, hasta 3 números (ej: «48 y 3» o «6»)."
REMINDER_BAD_HOURS = (
    "No entendí 🤔. Escribe horas o días enteros, hasta 3, de 1 hora a 14 días "
    "(ej: «48 y 3» o «un día y una hora»)."
)
REMINDER_WHICH_BARRIO = (
    "Coordinas más de un barrio: toca «✏️ Otras horas» en el que quieras cambiar."
)
REMINDERS_SAVED = "Listo: las reuniones de {barrio} se recuerdan {current}. Reuniones próximas actualizadas: {meetings}."
REMINDERS_SAVED_NONE = "Listo: las reuniones de {barrio} ya no se recuerdan. Reuniones próximas actualizadas: {meetings}."
MEETING_CANCEL = "❌ Cancelar reunión"
MEETING_MOVE = "🕑 Cambiar fecha"
MEETING_CANCEL_CONFIRM = "¿Seguro que cancelas «{title}»? Aviso a todos los invitados."
MEETING_CANCEL_YES = "Sí, cancelar"
MEETING_CANCELLED_NOTICE = "❌ Se canceló la reunión:\n\n{card}"
MEETING_MOVED_NOTICE = (
    "🕑 Cambió la fecha de la reunión.\nAntes: {old}\nAhora: {new}\n\n{card}\n\n"
    "¿Puedes en la nueva fecha? Si ya respondiste, tu respuesta sigue en pie; cámbiala aquí "
    "si hace falta 👇"
)
MEETING_CANCELLED_DONE = "Reunión cancelada. Avisé a {people}."
MEETING_MOVED_DONE = "Fecha cambiada. Avisé a {people}."
MEETING_GONE = "Esa reunión ya no se puede cambiar."

# --- funding calls -------------------------------------------------------------------------
CALL_ASK_NAME = "¿Cómo se llama la convocatoria? (ej: «Fondo Barrios Comerciales 2027»)"
CALL_ASK_DESCRIPTION = "Descríbela en pocas líneas: qué financia y para quién."
CALL_ASK_LINK = "Pega el enlace con las bases (https://…), o sigue sin enlace."
CALL_NO_LINK = "Sin enlace"
CALL_BAD_LINK = "Ese enlace no me sirve: escríbelo sin espacios, por ejemplo www.sercotec.cl"
CALL_ASK_AUDIENCE = "¿A quién va dirigida?"
CALL_ALL_REGION = "Toda la región de {region}"
CALL_ASK_OPENS = "¿Desde qué día se puede postular? (ej: «hoy», «1/12», «1 de diciembre»)"
CALL_ASK_CLOSES = "¿Hasta qué día? (ej: «15/12»)"
CALL_BAD_DAY = "No entendí el día. Escríbelo así: «15/12» o «15 de diciembre»."
CALL_CLOSES_BEFORE = "El cierre debe ser después de la apertura y no puede haber pasado."
CALL_ANOTHER_DAY = "Escribe otro día, como «15/12»."
CALL_CLOSES_AHEAD = "El cierre puede ser hoy o un día que venga."
CALL_CARD = "💰 {name}\n{description}{link}\n🗓️ Postulación: del {opens} al {closes}"
CALL_LINK = "\n🔗 {url}"
CALL_CONFIRM = "Así se verá 👆 Llegará a {people}. ¿La publico?"
CALL_PUBLISH = "📢 Publicar"
CALL_PUBLISHED = "Publicada. Avisé a {people}; la verán en /convocatorias hasta el cierre."
CALL_NOTICE = "Nueva convocatoria para tu barrio:\n\n{card}\n\nVer todas: /convocatorias"
CALLS_NONE = "No hay convocatorias abiertas para tu barrio en este momento."
CALL_DAYS_LEFT = "\n⏳ Quedan {days} días"
CALL_ONE_DAY_LEFT = "\n⏳ Queda 1 día: cierra mañana"
CALL_LAST_DAY = "\n⏳ ¡Hoy es el último día!"
CALL_NOT_OPEN = "\n🔜 Abre el {opens}"
CALL_RECLOSE = "🗓️ Cambiar cierre"
CALL_WITHDRAW = "🗑️ Retirar"
CALL_WITHDRAW_CONFIRM = "¿Retiro «{name}»? Deja de aparecer en /convocatorias y no se recuerda más."
CALL_WITHDRAW_YES = "Sí, retirar"
CALL_WITHDRAWN = "Listo: «{name}» está retirada."
CALL_RECLOSED = "Listo: «{name}» ahora cierra el {closes}. Los recordatorios siguen la nueva fecha."
CALL_GONE = "Esa convocatoria ya no está abierta."

# --- leaving and asking again --------------------------------------------------------------
MEMBER_LEFT_FOR_COORDINATOR = "{name} dejó {barrio}."
# Not named: what the bot would keep of this notice would outlive the erasure it reports.
MEMBER_ERASED_FOR_COORDINATOR = (
    "👋 Una persona de {barrio} se dio de baja y borró sus datos. "
    "Ya no aparece en /miembros ni en el directorio."
)
REJOIN_WAIT = "Saliste de {barrio} hace poco. Podrás pedir tu ingreso de nuevo desde {when}."

# --- my data (/misdatos) -------------------------------------------------------------------
MYDATA_SENT = (
    "📄 Aquí tienes todo lo que Barrio Conecta guarda de ti. "
    "Para corregirlo usa /perfil; para borrarlo, /baja."
)
MYDATA_NONE = "No guardamos ningún dato tuyo: no tienes registro en Barrio Conecta."
MYDATA_NONE_YET = (
    "Aún no tienes registro. Solo guardo lo que llevas escrito para inscribirte, y se borra "
    "si no aceptas, si escribes /cancelar o si no terminas en 7 días."
)
MYDATA_NOTES = {
    "generado": "Cuándo se hizo este archivo.",
    "perfil": "Tus datos: nombre, negocio, rubro, dirección y teléfono (si los diste), qué eliges mostrar en el directorio, tu horario de silencio y si recibes el resumen semanal. Se cambian con /perfil, /silencio y /resumen.",
    "consentimiento": "Cuándo aceptaste que guardemos tus datos.",
    "canales": "Por dónde te escribimos: el canal, tu número de usuario en él y si te llegan ahí los avisos del barrio (se elige con /vincular).",
    "membresias": "Cada barrio en que te inscribiste, con tu rol y estado, también los que dejaste o no se aprobaron: el motivo que te dio la coordinación, si no te aprobó, y el contacto que dejaste para los vecinos, si coordinas.",
    "reuniones": "Tus respuestas a las invitaciones a reuniones.",
    "invitaciones": "Las reuniones a las que te invitaron: a quienes no responden se les recuerda la reunión.",
    "alertas": "Las alertas de seguridad que enviaste. Llegaron a todo el barrio con tu nombre.",
    "directorio": "Lo que ven de ti los otros socios de tus barrios al buscar en /directorio.",
    "mensajes": "Mensajes que el bot te envió, o envió a la coordinación sobre ti (se borran a los 30 días de enviados).",
    "conversacion": "Dónde vas en una conversación con el bot, si dejaste algo a medias.",
}
DELIVERY_STATUS_WORDS = {
    "expired": "no enviado: ya no correspondía (habría llegado tarde, o la reunión cambió)",
    "pending": "por enviar",
    "sending": "enviándose",
    "sent": "enviado",
    "failed": "no se pudo enviar",
    "unreachable": "no se pudo entregar",
    "ambiguous": "sin confirmar",
}
ROLE_WORDS = {"member": "integrante", "coordinator": "coordinación"}
ALERT_STATUS_WORDS = {"open": "abierta", "resolved": "resuelta", "false_alarm": "falsa alarma"}

# --- too many messages (bot/telegram.py, intake limit) -------------------------------------
TOO_MANY_MESSAGES = (
    "Recibí muchos mensajes tuyos en muy poco rato 🙏 Espera un minuto, por favor, y vuelve a "
    "escribirme. Lo que me envíes mientras tanto no lo podré responder."
)

# --- announcements on WhatsApp: the daily cap and the receipts (handlers/announcements.py) -
# The report's "Entregados" when the announcement went by both channels.
ANNOUNCE_SENT_BY_CHANNEL = "{sent} ({whatsapp} por WhatsApp, {telegram} por Telegram)"
ANNOUNCE_RECEIPTS_BUTTON = "🔄 ¿Cuántos lo leyeron?"
ANNOUNCE_RECEIPTS_HEADER = "📊 Tu anuncio «{excerpt}», hasta ahora:"
ANNOUNCE_RECEIPTS_WHATSAPP = (
    "📱 WhatsApp: {sent} enviados, {delivered} llegaron al teléfono, {read} ya lo leyeron"
)
ANNOUNCE_RECEIPTS_TELEGRAM = "✈️ Telegram: {sent} enviados (Telegram no avisa si lo leyeron)"
ANNOUNCE_RECEIPTS_FAILED = "❌ No se pudo: {failed} · 📵 Sin contacto: {unreachable}"
ANNOUNCE_RECEIPTS_AMBIGUOUS = "❔ Sin confirmar: {ambiguous}"
ANNOUNCE_RECEIPTS_WAITING = "⏳ Por enviar: {waiting}"
ANNOUNCE_HELD = (
    "⏸️ WhatsApp deja que el bot escriba a un número limitado de personas por día, y hoy ya "
    "se llegó al tope. A {people} en WhatsApp tu anuncio les llegará a partir de "
    "{when}. Te aviso cuando termine."
)
