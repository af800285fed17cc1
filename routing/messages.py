"""Every sentence the bot writes, in English, Spanish, German and Hindi (Latin script).

Templates are chosen by the recipient's language; a missing translation falls back to
English rather than failing, so a new template can land before its translations.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

LANGUAGES = ("en", "es", "de", "hi")

TEMPLATES: dict[str, dict[str, str]] = {
    "alert": {
        "en": "{code} {type} on {machine}: {summary}",
        "es": "{code} {type} en {machine}: {summary}",
        "de": "{code} {type} an {machine}: {summary}",
        "hi": "{code} {type} {machine} par: {summary}",
    },
    "alert_ack": {
        "en": "Please acknowledge within {ack}.",
        "es": "Confirma en menos de {ack}.",
        "de": "Bitte innerhalb von {ack} bestätigen.",
        "hi": "{ack} ke andar acknowledge karein.",
    },
    "alert_past_fixes": {
        "en": "Last {count} times: {fixes}.",
        "es": "Las últimas {count} veces: {fixes}.",
        "de": "Die letzten {count} Male: {fixes}.",
        "hi": "Pichhle {count} baar: {fixes}.",
    },
    "alert_past_fix_once": {
        "en": "Last time: {fixes}.",
        "es": "La última vez: {fixes}.",
        "de": "Letztes Mal: {fixes}.",
        "hi": "Pichhli baar: {fixes}.",
    },
    "past_fix": {
        "en": "{fix} ({code}, {ago} ago, {took})",
        "es": "{fix} ({code}, hace {ago}, {took})",
        "de": "{fix} ({code}, vor {ago}, {took})",
        "hi": "{fix} ({code}, {ago} pehle, {took})",
    },
    "alert_work_orders": {
        "en": "Affected work orders: {work_orders}.",
        "es": "Órdenes afectadas: {work_orders}.",
        "de": "Betroffene Aufträge: {work_orders}.",
        "hi": "Prabhavit work orders: {work_orders}.",
    },
    "alert_customers": {
        "en": "Customer orders at risk: {customer_orders}.",
        "es": "Pedidos de cliente en riesgo: {customer_orders}.",
        "de": "Gefährdete Kundenaufträge: {customer_orders}.",
        "hi": "Customer orders khatre mein: {customer_orders}.",
    },
    "alert_staging": {
        "en": "Staging conflict: {work_order} needs {material}.",
        "es": "Conflicto de abastecimiento: {work_order} necesita {material}.",
        "de": "Bereitstellungskonflikt: {work_order} braucht {material}.",
        "hi": "Staging conflict: {work_order} ko {material} chahiye.",
    },
    "reporter_opened": {
        "en": "{code} opened: {type} on {machine}. Notified: {names}.",
        "es": "{code} abierto: {type} en {machine}. Avisados: {names}.",
        "de": "{code} eröffnet: {type} an {machine}. Benachrichtigt: {names}.",
        "hi": "{code} khula: {machine} par {type}. Suchit kiya: {names}.",
    },
    "joined": {
        "en": "Already reported as {code} ({status}); your report was added to it.",
        "es": "Ya reportado como {code} ({status}); tu reporte se añadió.",
        "de": "Schon als {code} gemeldet ({status}); deine Meldung wurde ergänzt.",
        "hi": "Pehle se {code} ({status}) mein report hai; aapki report jod di gayi.",
    },
    "acknowledged": {
        "en": "{code}: {name} acknowledged.",
        "es": "{code}: {name} confirmó.",
        "de": "{code}: {name} hat bestätigt.",
        "hi": "{code}: {name} ne acknowledge kiya.",
    },
    "proposal": {
        "en": "{code}: {name} proposes: {summary}. Approve or reject?",
        "es": "{code}: {name} propone: {summary}. ¿Aprobar o rechazar?",
        "de": "{code}: {name} schlägt vor: {summary}. Freigeben oder ablehnen?",
        "hi": "{code}: {name} ka prastav: {summary}. Approve ya reject?",
    },
    "refused": {
        "en": "Only someone with the {role} role can approve or reject {code}. Your attempt was recorded.",
        "es": "Solo alguien con el rol {role} puede aprobar o rechazar {code}. Tu intento quedó registrado.",
        "de": "Nur die {role} darf {code} freigeben oder ablehnen. Dein Versuch wurde vermerkt.",
        "hi": "Sirf {role} role wale {code} ko approve ya reject kar sakte hain. Aapki koshish record ho gayi.",
    },
    "refused_erp": {
        "en": "Only someone with the {role} role can retry or abandon what the ERP refused for {code}. Your attempt was recorded.",
        "es": "Solo alguien con el rol {role} puede reintentar o abandonar lo que el ERP rechazó en {code}. Tu intento quedó registrado.",
        "de": "Nur die {role} darf erneut senden oder aufgeben, was das ERP für {code} abgelehnt hat. Dein Versuch wurde vermerkt.",
        "hi": "Sirf {role} role wale {code} ke liye ERP ka reject kiya hua dobara bhej ya chhod sakte hain. Aapki koshish record ho gayi.",
    },
    "refused_mes": {
        "en": "Only someone with the {role} role can retry or abandon what the MES refused for {code}. Your attempt was recorded.",
        "es": "Solo alguien con el rol {role} puede reintentar o abandonar lo que el MES rechazó en {code}. Tu intento quedó registrado.",
        "de": "Nur die {role} darf erneut senden oder aufgeben, was das MES für {code} abgelehnt hat. Dein Versuch wurde vermerkt.",
        "hi": "Sirf {role} role wale {code} ke liye MES ka reject kiya hua dobara bhej ya chhod sakte hain. Aapki koshish record ho gayi.",
    },
    "approved": {
        "en": "{code} approved by {name}.",
        "es": "{code} aprobado por {name}.",
        "de": "{code} freigegeben von {name}.",
        "hi": "{code} ko {name} ne approve kiya.",
    },
    "rejected": {
        "en": "{code}: {name} rejected the proposal. {reason}",
        "es": "{code}: {name} rechazó la propuesta. {reason}",
        "de": "{code}: {name} hat den Vorschlag abgelehnt. {reason}",
        "hi": "{code}: {name} ne prastav reject kiya. {reason}",
    },
    "erp_posted": {
        "en": "{code}: {kind} posted to the ERP as {reference}.",
        "es": "{code}: registrado en el ERP ({kind}) con la referencia {reference}.",
        "de": "{code}: {kind} im ERP gebucht als {reference}.",
        "hi": "{code}: {kind} ERP mein post hua, reference {reference}.",
    },
    "erp_rejected": {
        "en": "{code}: the ERP refused the {kind}: {reason}. The approver retries it after the fix or abandons it.",
        "es": "{code}: el ERP rechazó el envío ({kind}): {reason}. Quien aprueba lo reintenta tras corregirlo o lo abandona.",
        "de": "{code}: das ERP hat die Buchung ({kind}) abgelehnt: {reason}. Die Freigabe sendet sie nach der Korrektur erneut oder gibt sie auf.",
        "hi": "{code}: ERP ne {kind} reject kiya: {reason}. Approver theek karke dobara bhejega ya chhod dega.",
    },
    # To the approver role, with the Retry and Abandon buttons (routing/erp_rejections.py).
    "erp_rejected_decide": {
        "en": "{code}: the ERP refused the {kind}: {reason}. Fix it in the ERP or the plant file, then Retry; or Abandon it with a reason.",
        "es": "{code}: el ERP rechazó el envío ({kind}): {reason}. Corrígelo en el ERP o en el archivo de planta y pulsa Reintentar; o Abandonar con un motivo.",
        "de": "{code}: das ERP hat die Buchung ({kind}) abgelehnt: {reason}. Im ERP oder in der Werksdatei korrigieren, dann Erneut senden; oder mit Grund Aufgeben.",
        "hi": "{code}: ERP ne {kind} reject kiya: {reason}. ERP ya plant file mein theek karke Dobara bhejein dabayein; ya wajah ke saath Chhod dein.",
    },
    "ask_abandon_reason": {
        "en": "{code}: why give up the {kind} in the ERP? Your next message is the reason.",
        "es": "{code}: ¿por qué abandonar el envío ({kind}) al ERP? Tu próximo mensaje será el motivo.",
        "de": "{code}: Warum die Buchung ({kind}) im ERP aufgeben? Deine nächste Nachricht ist der Grund.",
        "hi": "{code}: ERP mein {kind} kyon chhod rahe hain? Aapka agla message wajah mana jayega.",
    },
    "confirm_erp_retry": {
        "en": "Recorded on {code}: the {kind} goes to the ERP again.",
        "es": "Registrado en {code}: el envío ({kind}) vuelve al ERP.",
        "de": "Vermerkt bei {code}: die Buchung ({kind}) geht erneut ins ERP.",
        "hi": "{code} par record hua: {kind} dobara ERP mein jayega.",
    },
    "confirm_erp_abandon": {
        "en": "Recorded on {code}: the {kind} is given up in the ERP ({reason}).",
        "es": "Registrado en {code}: se abandona el envío ({kind}) al ERP ({reason}).",
        "de": "Vermerkt bei {code}: die Buchung ({kind}) im ERP ist aufgegeben ({reason}).",
        "hi": "{code} par record hua: ERP mein {kind} chhod diya ({reason}).",
    },
    "erp_not_rejected": {
        "en": "{code}: the {kind} no longer waits for a decision ({status}); nothing was recorded.",
        "es": "{code}: el envío ({kind}) ya no espera una decisión ({status}); no se registró nada.",
        "de": "{code}: die Buchung ({kind}) wartet auf keine Entscheidung mehr ({status}); nichts wurde vermerkt.",
        "hi": "{code}: {kind} ab faisle ka intezaar nahin kar raha ({status}); kuch record nahin hua.",
    },
    "erp_unknown": {
        "en": "That ERP transaction is not known here; nothing was recorded.",
        "es": "Ese envío al ERP no se conoce aquí; no se registró nada.",
        "de": "Diese ERP-Buchung ist hier nicht bekannt; nichts wurde vermerkt.",
        "hi": "Yeh ERP transaction yahan nahin mila; kuch record nahin hua.",
    },
    "erp_retry_refused": {
        "en": "{code}: the {kind} cannot go again as it is: {problem}. Nothing was recorded.",
        "es": "{code}: el envío ({kind}) no puede repetirse así: {problem}. No se registró nada.",
        "de": "{code}: die Buchung ({kind}) kann so nicht erneut gesendet werden: {problem}. Nichts wurde vermerkt.",
        "hi": "{code}: {kind} aise dobara nahin ja sakta: {problem}. Kuch record nahin hua.",
    },
    "status_line_erp_retry": {
        "en": "{code}: sent to the ERP again by {name}",
        "es": "{code}: reenviado al ERP por {name}",
        "de": "{code}: erneut ans ERP gesendet von {name}",
        "hi": "{code}: {name} ne ERP ko dobara bheja",
    },
    "status_line_erp_abandon": {
        "en": "{code}: given up in the ERP by {name}",
        "es": "{code}: abandonado en el ERP por {name}",
        "de": "{code}: im ERP aufgegeben von {name}",
        "hi": "{code}: {name} ne ERP mein chhod diya",
    },
    # --- ERP rejections settled: retried or abandoned (issue 17) ---
    "erp_retried": {
        "en": "{code}: {name} sent {kind} to the ERP again.",
        "es": "{code}: {name} envió {kind} de nuevo al ERP.",
        "de": "{code}: {name} hat {kind} erneut an das ERP geschickt.",
        "hi": "{code}: {name} ne {kind} ERP ko dobara bheja.",
    },
    "erp_abandoned": {
        "en": "{code}: {name} gave up {kind} in the ERP ({reason}). Book it in the ERP by hand if it is still needed.",
        "es": "{code}: {name} abandonó {kind} en el ERP ({reason}). Regístralo a mano en el ERP si aún hace falta.",
        "de": "{code}: {name} hat {kind} im ERP aufgegeben ({reason}). Bei Bedarf bitte im ERP von Hand buchen.",
        "hi": "{code}: {name} ne ERP mein {kind} chhod diya ({reason}). Zaroorat ho to ERP mein haath se darj karein.",
    },
    "erp_auth_failed": {
        "en": "ERP login refused ({reason}); posting is paused until the credentials are fixed.",
        "es": "El ERP rechazó el acceso ({reason}); el envío está en pausa.",
        "de": "ERP-Anmeldung abgelehnt ({reason}); Buchungen pausiert.",
        "hi": "ERP login fail ({reason}); posting ruki hui hai.",
    },
    "closed": {
        "en": "{code} closed.",
        "es": "{code} cerrado.",
        "de": "{code} geschlossen.",
        "hi": "{code} band kiya gaya.",
    },
    "escalation": {
        "en": "{code} was not acknowledged within {ack} ({role}); escalated to you. {summary}",
        "es": "{code} sin confirmar en {ack} ({role}); escalado a ti. {summary}",
        "de": "{code} nicht von der {role} innerhalb {ack} bestätigt; an dich eskaliert. {summary}",
        "hi": "{code} ko {role} ne {ack} mein acknowledge nahi kiya; aapko escalate kiya. {summary}",
    },
    "nobody_on_shift": {
        "en": "{code}: nobody with the {role} role is on shift; escalated to you. {summary}",
        "es": "{code}: nadie con el rol {role} está en turno; escalado a ti. {summary}",
        "de": "{code}: niemand aus der {role} ist im Dienst; an dich eskaliert. {summary}",
        "hi": "{code}: {role} ka koi shift par nahi hai; aapko escalate kiya. {summary}",
    },
    "ask_machine": {
        "en": "Which machine is it?",
        "es": "¿Qué máquina es?",
        "de": "Welche Maschine ist betroffen?",
        "hi": "Kaun si machine hai?",
    },
    "ask_machine_choice": {
        "en": "Which one: {options}?",
        "es": "¿Cuál: {options}?",
        "de": "Welche: {options}?",
        "hi": "Kaun si: {options}?",
    },
    "ask_type": {
        "en": "What kind of problem is it: breakdown, quality, material, safety, tooling, utility or staffing?",
        "es": "¿Qué tipo de problema es: avería, calidad, material, seguridad, herramienta, servicios o personal?",
        "de": "Was für ein Problem: Ausfall, Qualität, Material, Sicherheit, Werkzeug, Versorgung oder Personal?",
        "hi": "Kis tarah ki problem hai: breakdown, quality, material, safety, tooling, utility ya staffing?",
    },
    "ask_problem": {
        "en": "Is this a problem to report? yes / no",
        "es": "¿Es un problema para reportar? sí / no",
        "de": "Ist das eine Störung, die ich melden soll? ja / nein",
        "hi": "Kya yeh report karne wali problem hai? haan / nahi",
    },
    "not_reported": {
        "en": "OK, nothing reported.",
        "es": "De acuerdo, no se reporta nada.",
        "de": "Gut, nichts gemeldet.",
        "hi": "Theek hai, kuch report nahi kiya.",
    },
    "not_registered": {
        "en": "You are not registered in this plant. Ask your supervisor to add you.",
        "es": "No estás registrado en esta planta. Pide a tu supervisor que te añada.",
        "de": "Du bist in diesem Werk nicht registriert. Bitte deinen Vorgesetzten, dich einzutragen.",
        "hi": "Aap is plant mein registered nahi hain. Apne supervisor se judwaiye.",
    },
    "no_open_exception": {
        "en": "There is no open exception for you to answer to.",
        "es": "No hay ninguna incidencia abierta para ti.",
        "de": "Es gibt keine offene Störung für dich.",
        "hi": "Aapke liye koi khula exception nahi hai.",
    },
    "noted": {
        "en": "{code}: noted.",
        "es": "{code}: anotado.",
        "de": "{code}: notiert.",
        "hi": "{code}: note kiya.",
    },
    "help": {
        "en": "Tell me what is wrong (machine, work order), or ask: 'what is down?', 'status WO-1042', 'MTTR this week'.",
        "es": "Cuéntame qué pasa (máquina, orden) o pregunta: '¿qué está parado?', 'estado WO-1042'.",
        "de": "Schreib, was los ist (Maschine, Auftrag), oder frag: 'was steht?', 'Status WO-1042'.",
        "hi": "Batayein kya problem hai (machine, work order), ya poochein: 'kya band hai?', 'status WO-1042'.",
    },
    "photo_unreadable": {
        "en": "I could not read any text on that photo. Please type what is wrong (machine, problem), or send a sharper photo of the paper.",
        "es": "No pude leer texto en esa foto. Escribe qué pasa (máquina, problema) o envía una foto más nítida del papel.",
        "de": "Auf dem Foto konnte ich keinen Text lesen. Bitte schreib, was los ist (Maschine, Problem), oder schick ein schärferes Foto.",
        "hi": "Is photo par koi text padh nahi paaya. Kripya likhein kya problem hai (machine, problem), ya kagaz ki saaf photo bhejein.",
    },
    "processing_failed": {
        "en": "Sorry, I could not process that message; it is stored and an admin will look at it.",
        "es": "Perdón, no pude procesar el mensaje; quedó guardado y un administrador lo revisará.",
        "de": "Entschuldigung, die Nachricht konnte nicht verarbeitet werden; sie ist gespeichert.",
        "hi": "Maaf kijiye, message process nahi hua; woh save hai aur admin dekhega.",
    },
    # --- lifecycle (routing/lifecycle.py): refusals that say the state, notes, button status lines ----
    "refused_not_paged": {
        "en": "Only the people paged for {code} can acknowledge it or propose a fix.",
        "es": "Solo las personas avisadas de {code} pueden confirmarla o proponer una solución.",
        "de": "Nur die zu {code} benachrichtigten Personen können bestätigen oder eine Lösung vorschlagen.",
        "hi": "{code} ko sirf wahi acknowledge ya fix prastavit kar sakte hain jinhe suchit kiya gaya.",
    },
    "already_acknowledged": {
        "en": "{code} is already acknowledged by {name}.",
        "es": "{code} ya fue confirmada por {name}.",
        "de": "{code} ist bereits von {name} bestätigt.",
        "hi": "{code} ko {name} pehle hi acknowledge kar chuke hain.",
    },
    "state_open": {
        "en": "{code} has no proposed fix yet",
        "es": "{code} aún no tiene una solución propuesta",
        "de": "Für {code} liegt noch kein Lösungsvorschlag vor",
        "hi": "{code} mein abhi koi fix prastavit nahi hai",
    },
    "state_acknowledged": {
        "en": "{code} has no proposed fix yet",
        "es": "{code} aún no tiene una solución propuesta",
        "de": "Für {code} liegt noch kein Lösungsvorschlag vor",
        "hi": "{code} mein abhi koi fix prastavit nahi hai",
    },
    "state_proposed": {
        "en": "{code} has a proposed fix waiting for a decision",
        "es": "{code} tiene una solución propuesta pendiente de decisión",
        "de": "{code} hat einen Lösungsvorschlag, der auf Entscheidung wartet",
        "hi": "{code} ka fix prastav faisle ka intezaar kar raha hai",
    },
    "state_approved": {
        "en": "{code} is already approved by {name}",
        "es": "{code} ya está aprobada por {name}",
        "de": "{code} ist bereits von {name} freigegeben",
        "hi": "{code} ko {name} pehle hi approve kar chuke hain",
    },
    "state_posted": {
        "en": "{code} is already approved by {name} and posted to the ERP",
        "es": "{code} ya está aprobada por {name} y registrada en el ERP",
        "de": "{code} ist bereits von {name} freigegeben und im ERP gebucht",
        "hi": "{code} ko {name} approve kar chuke hain aur ERP mein post ho gaya hai",
    },
    "state_closed": {
        "en": "{code} is closed",
        "es": "{code} está cerrada",
        "de": "{code} ist geschlossen",
        "hi": "{code} band ho chuka hai",
    },
    "refused_nothing_acknowledge": {"en": "nothing to acknowledge", "es": "nada que confirmar",
                                    "de": "nichts mehr zu bestätigen", "hi": "acknowledge karne ko kuch nahi"},
    "refused_nothing_propose": {"en": "nothing to propose", "es": "nada que proponer",
                                "de": "nichts mehr vorzuschlagen", "hi": "prastav karne ko kuch nahi"},
    "refused_nothing_approve": {"en": "nothing to approve", "es": "nada que aprobar",
                                "de": "nichts freizugeben", "hi": "approve karne ko kuch nahi"},
    "refused_nothing_reject": {"en": "nothing to reject", "es": "nada que rechazar",
                               "de": "nichts abzulehnen", "hi": "reject karne ko kuch nahi"},
    "passed_on": {
        "en": "{code}: noted and passed on to {names}.",
        "es": "{code}: anotado y enviado a {names}.",
        "de": "{code}: notiert und an {names} weitergegeben.",
        "hi": "{code}: note kiya aur {names} ko bata diya.",
    },
    "reporter_note": {
        "en": "{code}: {name} writes: {text}",
        "es": "{code}: {name} escribe: {text}",
        "de": "{code}: {name} schreibt: {text}",
        "hi": "{code}: {name} ka sandesh: {text}",
    },
    "status_line_acknowledge": {
        "en": "{code} acknowledged by {name}",
        "es": "{code} confirmada por {name}",
        "de": "{code} bestätigt von {name}",
        "hi": "{code} ko {name} ne acknowledge kiya",
    },
    "status_line_propose": {
        "en": "{code}: fix proposed by {name}",
        "es": "{code}: solución propuesta por {name}",
        "de": "{code}: Lösung vorgeschlagen von {name}",
        "hi": "{code}: {name} ne fix prastavit kiya",
    },
    "status_line_approve": {
        "en": "{code} approved by {name}",
        "es": "{code} aprobada por {name}",
        "de": "{code} freigegeben von {name}",
        "hi": "{code} ko {name} ne approve kiya",
    },
    "status_line_reject": {
        "en": "{code}: proposed fix rejected by {name}",
        "es": "{code}: solución rechazada por {name}",
        "de": "{code}: Lösungsvorschlag abgelehnt von {name}",
        "hi": "{code}: {name} ne fix prastav reject kiya",
    },
    # --- conversation (routing/conversation.py): questions, confirmations, limits ------------
    "ask_which": {
        "en": "Which one do you mean? {options}. Reply with the number, the code or the machine.",
        "es": "¿A cuál te refieres? {options}. Responde con el número, el código o la máquina.",
        "de": "Welche meinst du? {options}. Antworte mit der Nummer, dem Code oder der Maschine.",
        "hi": "Aap kaunsa keh rahe hain? {options}. Number, code ya machine ka naam likhein.",
    },
    "which_dropped": {
        "en": "I could not tell which one you meant, so nothing was recorded. Reply in its thread or start with its code.",
        "es": "No supe a cuál te referías, así que no se registró nada. Responde en su hilo o empieza con su código.",
        "de": "Ich konnte nicht erkennen, welche du meinst; nichts wurde vermerkt. Antworte im Thread oder beginne mit dem Code.",
        "hi": "Samajh nahi aaya aap kaunsa keh rahe the, isliye kuch record nahi hua. Uske thread mein ya code se shuru karke likhein.",
    },
    "confirm_ack": {
        "en": "Recorded on {code}: you acknowledged.",
        "es": "Registrado en {code}: confirmaste.",
        "de": "Vermerkt bei {code}: du hast bestätigt.",
        "hi": "{code} par record hua: aapne acknowledge kiya.",
    },
    "confirm_ack_told": {
        "en": "Recorded on {code}: you acknowledged. {name} has been told.",
        "es": "Registrado en {code}: confirmaste. {name} ya está avisado.",
        "de": "Vermerkt bei {code}: du hast bestätigt. {name} wurde informiert.",
        "hi": "{code} par record hua: aapne acknowledge kiya. {name} ko bata diya gaya.",
    },
    "confirm_proposal": {
        "en": "Your fix for {code} is waiting for approval by {role}.",
        "es": "Tu solución para {code} espera la aprobación de {role}.",
        "de": "Deine Lösung für {code} wartet auf die Freigabe durch {role}.",
        "hi": "{code} ke liye aapka fix {role} ke approval ka intezaar kar raha hai.",
    },
    "confirm_comment": {
        "en": "Comment added to {code}.",
        "es": "Comentario añadido a {code}.",
        "de": "Kommentar zu {code} hinzugefügt.",
        "hi": "{code} mein comment jod diya.",
    },
    "confirm_approved": {
        "en": "Recorded on {code}: you approved the fix. It goes to the ERP now.",
        "es": "Registrado en {code}: aprobaste la solución. Ahora pasa al ERP.",
        "de": "Vermerkt bei {code}: du hast die Lösung freigegeben. Sie geht jetzt ins ERP.",
        "hi": "{code} par record hua: aapne fix approve kiya. Ab yeh ERP mein jayega.",
    },
    "confirm_rejected": {
        "en": "Recorded on {code}: you rejected the fix. The proposer has been told.",
        "es": "Registrado en {code}: rechazaste la solución. Quien la propuso ya está avisado.",
        "de": "Vermerkt bei {code}: du hast die Lösung abgelehnt. Der Vorschlagende wurde informiert.",
        "hi": "{code} par record hua: aapne fix reject kiya. Prastav dene wale ko bata diya gaya.",
    },
    "too_long": {
        "en": "Your message is too long ({length} characters, at most {limit}). Please shorten it and send it again.",
        "es": "Tu mensaje es demasiado largo ({length} caracteres, máximo {limit}). Acórtalo y envíalo de nuevo.",
        "de": "Deine Nachricht ist zu lang ({length} Zeichen, höchstens {limit}). Bitte kürzen und noch einmal senden.",
        "hi": "Aapka message bahut lamba hai ({length} akshar, zyada se zyada {limit}). Chhota karke dobara bhejein.",
    },
    "option": {
        "en": "{number}) {code} {type} on {machine}",
        "es": "{number}) {code} {type} en {machine}",
        "de": "{number}) {code} {type} an {machine}",
        "hi": "{number}) {code} {machine} par {type}",
    },
    # --- "which one?" with buttons (routing/conversation.py, bot/channels/cards.py) -----------
    # The status line that replaces the question's buttons once it is answered or dropped.
    "choice_answered": {"en": "Answered: {code}", "es": "Respondido: {code}", "de": "Beantwortet: {code}",
                        "hi": "Jawab diya: {code}"},
    "choice_closed": {"en": "No longer asked", "es": "Ya no se pregunta", "de": "Nicht mehr gefragt",
                      "hi": "Ab nahin poochha ja raha"},
    # The button that opens a WhatsApp list of choices (at most 20 characters).
    "button_choose": {"en": "Choose", "es": "Elegir", "de": "Auswählen", "hi": "Chunein"},
    # The answer buttons of "Is this a problem to report?".
    "button_yes": {"en": "Yes", "es": "Sí", "de": "Ja", "hi": "Haan"},
    "button_no": {"en": "No", "es": "No", "de": "Nein", "hi": "Nahi"},
    # --- rich chat messages (bot/channels): buttons, status, the context of a thread ----------
    # Button titles stay within WhatsApp's 20 characters.
    "button_ack": {"en": "Acknowledge", "es": "Confirmar", "de": "Bestätigen", "hi": "Acknowledge"},
    "button_propose": {"en": "Propose fix", "es": "Proponer solución", "de": "Lösung vorschlagen",
                       "hi": "Fix batayein"},
    "button_approve": {"en": "Approve", "es": "Aprobar", "de": "Freigeben", "hi": "Approve"},
    "button_reject": {"en": "Reject", "es": "Rechazar", "de": "Ablehnen", "hi": "Reject"},
    "button_erp_retry": {"en": "Retry", "es": "Reintentar", "de": "Erneut senden", "hi": "Dobara bhejein"},
    "button_erp_abandon": {"en": "Abandon", "es": "Abandonar", "de": "Aufgeben", "hi": "Chhod dein"},
    "status_open": {"en": "open", "es": "abierta", "de": "offen", "hi": "khula"},
    "status_acknowledged": {"en": "acknowledged", "es": "confirmada", "de": "bestätigt", "hi": "acknowledged"},
    "status_proposed": {"en": "fix proposed", "es": "solución propuesta", "de": "Lösung vorgeschlagen",
                        "hi": "fix prastavit"},
    "status_approved": {"en": "approved", "es": "aprobada", "de": "freigegeben", "hi": "approved"},
    "status_posted": {"en": "posted to ERP", "es": "registrada en ERP", "de": "im ERP gebucht",
                      "hi": "ERP mein post"},
    "status_closed": {"en": "closed", "es": "cerrada", "de": "geschlossen", "hi": "band"},
    "thread_paged": {
        "en": "{code}: {names} notified ({role}).",
        "es": "{code}: avisados {names} ({role}).",
        "de": "{code}: {names} benachrichtigt ({role}).",
        "hi": "{code}: {names} ko suchit kiya ({role}).",
    },
    "thread_escalated": {
        "en": "{code}: not acknowledged in time ({role}); escalated to {names} ({to_role}).",
        "es": "{code}: sin confirmar a tiempo ({role}); escalado a {names} ({to_role}).",
        "de": "{code}: von der {role} nicht rechtzeitig bestätigt; eskaliert an {names} ({to_role}).",
        "hi": "{code}: {role} ne samay par acknowledge nahi kiya; {names} ({to_role}) ko escalate kiya.",
    },
    "thread_not_reached": {
        "en": "{code}: {name} was not reached on {channel}.",
        "es": "{code}: no se pudo avisar a {name} por {channel}.",
        "de": "{code}: {name} über {channel} nicht erreicht.",
        "hi": "{code}: {name} tak {channel} par sandesh nahi pahuncha.",
    },
    "thread_reported_again": {
        "en": "{code}: reported again by {name}: {text}",
        "es": "{code}: {name} lo reportó de nuevo: {text}",
        "de": "{code}: erneut gemeldet von {name}: {text}",
        "hi": "{code}: {name} ne phir report kiya: {text}",
    },
    "card_status": {
        "en": "{code} is now: {status}.",
        "es": "{code} ahora está: {status}.",
        "de": "{code} ist jetzt: {status}.",
        "hi": "{code} ab: {status}.",
    },
    "card_root": {
        "en": "{code} {type} on {machine}: {summary}",
        "es": "{code} {type} en {machine}: {summary}",
        "de": "{code} {type} an {machine}: {summary}",
        "hi": "{code} {type} {machine} par: {summary}",
    },
    "card_machine": {"en": "Machine: {machine}", "es": "Máquina: {machine}", "de": "Maschine: {machine}",
                     "hi": "Machine: {machine}"},
    "card_work_orders": {"en": "Work orders: {work_orders}", "es": "Órdenes: {work_orders}",
                         "de": "Aufträge: {work_orders}", "hi": "Work orders: {work_orders}"},
    "card_customers": {"en": "Customer orders at risk: {customer_orders}",
                       "es": "Pedidos en riesgo: {customer_orders}",
                       "de": "Gefährdete Kundenaufträge: {customer_orders}",
                       "hi": "Khatre mein orders: {customer_orders}"},
    "card_opened": {"en": "Opened {opened}", "es": "Abierta {opened}", "de": "Eröffnet {opened}",
                    "hi": "Khula {opened}"},
    "card_ack_due": {"en": "acknowledge by {due}", "es": "confirmar antes de {due}",
                     "de": "bestätigen bis {due}", "hi": "{due} tak acknowledge"},
    "card_status_line": {"en": "Status: {status}", "es": "Estado: {status}", "de": "Status: {status}",
                         "hi": "Status: {status}"},
    # --- words and the console (routing/timeline.py, routing/queries.py): the timeline as sentences ---
    "tl_opened": {
        "en": "{name} reported {problem} on {where}",
        "es": "{name} reportó {problem} en {where}",
        "de": "{name} hat {problem} an {where} gemeldet",
        "hi": "{name} ne {where} par {problem} report kiya",
    },
    "tl_opened_by_signal": {
        "en": "A machine signal reported {problem} on {where}",
        "es": "Una señal de máquina reportó {problem} en {where}",
        "de": "Ein Maschinensignal hat {problem} an {where} gemeldet",
        "hi": "Machine signal ne {where} par {problem} report kiya",
    },
    "tl_opened_by_inspection": {
        "en": "An inspection result reported {problem} on {where}",
        "es": "Un resultado de inspección reportó {problem} en {where}",
        "de": "Ein Prüfergebnis hat {problem} an {where} gemeldet",
        "hi": "Inspection result ne {where} par {problem} report kiya",
    },
    # --- ERP stock watch (routing/stock_watch.py) ---
    "tl_stock_short": {
        "en": "The ERP's stock of {material} is short: {usable} usable, {needed} needed by {work_orders}",
        "es": "Falta {material} en el stock del ERP: {usable} disponibles, {needed} necesarios para {work_orders}",
        "de": "{material} fehlt im ERP-Bestand: {usable} verfügbar, {needed} gebraucht für {work_orders}",
        "hi": "ERP stock mein {material} kam hai: {usable} available, {work_orders} ke liye {needed} chahiye",
    },
    "tl_stock_recovered": {
        "en": "The ERP's stock of {material} covers the next work orders again",
        "es": "El stock de {material} en el ERP vuelve a cubrir las próximas órdenes",
        "de": "Der ERP-Bestand von {material} deckt die nächsten Aufträge wieder",
        "hi": "ERP stock mein {material} ab agle work orders ke liye kaafi hai",
    },
    # --- quality inspection results (routing/quality.py) ---
    "tl_quality_failed": {
        "en": "Lot {lot} failed inspection: {characteristic} {value}",
        "es": "El lote {lot} no pasó la inspección: {characteristic} {value}",
        "de": "Los {lot} hat die Prüfung nicht bestanden: {characteristic} {value}",
        "hi": "Lot {lot} inspection mein fail hua: {characteristic} {value}",
    },
    "tl_quality_passed": {
        "en": "Lot {lot} passed inspection: {characteristic} {value}",
        "es": "El lote {lot} pasó la inspección: {characteristic} {value}",
        "de": "Los {lot} hat die Prüfung bestanden: {characteristic} {value}",
        "hi": "Lot {lot} inspection mein pass hua: {characteristic} {value}",
    },
    "tl_quality_limits": {"en": "limits {lower} to {upper}", "es": "límites {lower} a {upper}",
                          "de": "Grenzen {lower} bis {upper}", "hi": "limits {lower} se {upper}"},
    "tl_quality_at_most": {"en": "at most {upper}", "es": "como máximo {upper}", "de": "höchstens {upper}",
                           "hi": "zyada se zyada {upper}"},
    "tl_quality_at_least": {"en": "at least {lower}", "es": "como mínimo {lower}", "de": "mindestens {lower}",
                            "hi": "kam se kam {lower}"},
    "tl_quality_nominal": {"en": "nominal {nominal}", "es": "nominal {nominal}", "de": "Nennmaß {nominal}",
                           "hi": "nominal {nominal}"},
    "tl_quality_rejected": {"en": "{rejected} of {inspected} rejected", "es": "{rejected} de {inspected} rechazadas",
                            "de": "{rejected} von {inspected} ausgesondert",
                            "hi": "{inspected} mein se {rejected} reject"},
    "tl_quality_drift_above": {
        "en": "Drift: {characteristic} on {machine}, {count} results in a row above the centre line {centre} "
              "(last {value}, lot {lot})",
        "es": "Deriva: {characteristic} en {machine}, {count} resultados seguidos por encima de la línea central "
              "{centre} (último {value}, lote {lot})",
        "de": "Drift: {characteristic} an {machine}, {count} Ergebnisse in Folge über der Mittellinie {centre} "
              "(zuletzt {value}, Los {lot})",
        "hi": "Drift: {machine} par {characteristic}, lagatar {count} results centre line {centre} se upar "
              "(aakhri {value}, lot {lot})",
    },
    "tl_quality_drift_below": {
        "en": "Drift: {characteristic} on {machine}, {count} results in a row below the centre line {centre} "
              "(last {value}, lot {lot})",
        "es": "Deriva: {characteristic} en {machine}, {count} resultados seguidos por debajo de la línea central "
              "{centre} (último {value}, lote {lot})",
        "de": "Drift: {characteristic} an {machine}, {count} Ergebnisse in Folge unter der Mittellinie {centre} "
              "(zuletzt {value}, Los {lot})",
        "hi": "Drift: {machine} par {characteristic}, lagatar {count} results centre line {centre} se neeche "
              "(aakhri {value}, lot {lot})",
    },
    "tl_quality_trend_above": {
        "en": "Trend: {characteristic} on {machine}, {count} results in a row rising (last {value}, lot {lot})",
        "es": "Tendencia: {characteristic} en {machine}, {count} resultados seguidos subiendo "
              "(último {value}, lote {lot})",
        "de": "Trend: {characteristic} an {machine}, {count} Ergebnisse in Folge steigend (zuletzt {value}, Los {lot})",
        "hi": "Trend: {machine} par {characteristic}, lagatar {count} results badh rahe hain "
              "(aakhri {value}, lot {lot})",
    },
    "tl_quality_trend_below": {
        "en": "Trend: {characteristic} on {machine}, {count} results in a row falling (last {value}, lot {lot})",
        "es": "Tendencia: {characteristic} en {machine}, {count} resultados seguidos bajando "
              "(último {value}, lote {lot})",
        "de": "Trend: {characteristic} an {machine}, {count} Ergebnisse in Folge fallend (zuletzt {value}, Los {lot})",
        "hi": "Trend: {machine} par {characteristic}, lagatar {count} results ghat rahe hain "
              "(aakhri {value}, lot {lot})",
    },
    "quality_lot_failed": {
        "en": "{code}: another failed inspection: {summary}",
        "es": "{code}: otra inspección no superada: {summary}",
        "de": "{code}: eine weitere Prüfung nicht bestanden: {summary}",
        "hi": "{code}: ek aur inspection fail: {summary}",
    },
    "tl_reported_again": {
        "en": "{name} reported it again",
        "es": "{name} lo reportó de nuevo",
        "de": "{name} hat es erneut gemeldet",
        "hi": "{name} ne phir report kiya",
    },
    "tl_impact": {"en": "Impact: {parts}", "es": "Impacto: {parts}", "de": "Auswirkung: {parts}",
                  "hi": "Asar: {parts}"},
    "tl_impact_work_orders": {"en": "work orders {work_orders}", "es": "órdenes {work_orders}",
                              "de": "Aufträge {work_orders}", "hi": "work orders {work_orders}"},
    "tl_impact_customers": {"en": "customer orders {customer_orders} at risk",
                            "es": "pedidos de cliente {customer_orders} en riesgo",
                            "de": "Kundenaufträge {customer_orders} gefährdet",
                            "hi": "customer orders {customer_orders} khatre mein"},
    "tl_impact_staging": {"en": "{work_order} needs {material} staged", "es": "{work_order} necesita {material}",
                          "de": "{work_order} braucht {material}", "hi": "{work_order} ko {material} chahiye"},
    "tl_unrouted": {
        "en": "No routing rule matches this problem; nobody was paged",
        "es": "Ninguna regla de aviso aplica a este problema; no se avisó a nadie",
        "de": "Keine Benachrichtigungsregel passt; niemand wurde benachrichtigt",
        "hi": "Koi routing rule match nahi hua; kisi ko suchit nahi kiya",
    },
    "tl_nobody_available": {
        "en": "Nobody with the {role} role is on shift",
        "es": "Nadie con el rol {role} está en turno",
        "de": "Niemand aus der {role} ist im Dienst",
        "hi": "{role} ka koi shift par nahi hai",
    },
    "tl_routed": {
        "en": "Paged {names} ({role})",
        "es": "Avisados {names} ({role})",
        "de": "{names} benachrichtigt ({role})",
        "hi": "{names} ({role}) ko suchit kiya",
    },
    "tl_routed_ack": {
        "en": "Paged {names} ({role}), to acknowledge within {ack}",
        "es": "Avisados {names} ({role}), para confirmar en menos de {ack}",
        "de": "{names} benachrichtigt ({role}), Bestätigung innerhalb von {ack}",
        "hi": "{names} ({role}) ko suchit kiya, {ack} ke andar acknowledge karna hai",
    },
    "tl_escalated_late": {
        "en": "Escalated to {names} ({to_role}): not acknowledged within {ack}",
        "es": "Escalado a {names} ({to_role}): sin confirmar en {ack}",
        "de": "Eskaliert an {names} ({to_role}): nicht innerhalb von {ack} bestätigt",
        "hi": "{names} ({to_role}) ko escalate kiya: {ack} mein acknowledge nahi hua",
    },
    "tl_escalated_nobody": {
        "en": "Escalated to {names} ({to_role}): nobody with the {role} role on shift",
        "es": "Escalado a {names} ({to_role}): nadie con el rol {role} en turno",
        "de": "Eskaliert an {names} ({to_role}): niemand aus der {role} im Dienst",
        "hi": "{names} ({to_role}) ko escalate kiya: {role} ka koi shift par nahi",
    },
    "tl_escalated_unreached": {
        "en": "Escalation found nobody with the {to_role} role on shift",
        "es": "La escalada no encontró a nadie con el rol {to_role} en turno",
        "de": "Eskalation an die {to_role}: niemand im Dienst",
        "hi": "{to_role} ko escalate karna tha, par koi shift par nahi",
    },
    "tl_ack_overdue": {
        "en": "Not acknowledged in time ({role})",
        "es": "Sin confirmar a tiempo ({role})",
        "de": "Von der {role} nicht rechtzeitig bestätigt",
        "hi": "{role} ne samay par acknowledge nahi kiya",
    },
    "tl_acknowledged": {"en": "{name} acknowledged", "es": "{name} confirmó", "de": "{name} hat bestätigt",
                        "hi": "{name} ne acknowledge kiya"},
    "tl_said": {"en": "{sentence} — {text}", "es": "{sentence} — {text}", "de": "{sentence} — {text}",
                "hi": "{sentence} — {text}"},
    "tl_comment": {"en": "{name} wrote", "es": "{name} escribió", "de": "{name} schrieb", "hi": "{name} ne likha"},
    "tl_attachment": {"en": "{name} sent an attachment", "es": "{name} envió un adjunto",
                      "de": "{name} hat einen Anhang geschickt", "hi": "{name} ne attachment bheja"},
    "tl_photo_text": {"en": "Text read from {name}'s photo", "es": "Texto leído de la foto de {name}",
                      "de": "Text aus dem Foto von {name} gelesen", "hi": "{name} ki photo se padha gaya text"},
    "tl_proposed": {"en": "{name} proposed a fix", "es": "{name} propuso una solución",
                    "de": "{name} hat eine Lösung vorgeschlagen", "hi": "{name} ne fix ka prastav diya"},
    "tl_refused": {
        "en": "{name} tried to decide; refused: only someone with the {role} role can approve or reject",
        "es": "{name} intentó decidir; rechazado: solo alguien con el rol {role} puede aprobar o rechazar",
        "de": "{name} wollte entscheiden; abgewiesen: nur die {role} darf freigeben oder ablehnen",
        "hi": "{name} ne decide karna chaha; mana: sirf {role} role wale approve ya reject kar sakte hain",
    },
    "tl_decision_ignored": {
        "en": "{name} tried to decide, but there was no proposal to decide on",
        "es": "{name} intentó decidir, pero no había ninguna propuesta",
        "de": "{name} wollte entscheiden, aber es lag kein Vorschlag vor",
        "hi": "{name} ne decide karna chaha, par koi prastav nahi tha",
    },
    "tl_approved": {"en": "{name} approved", "es": "{name} aprobó", "de": "{name} hat freigegeben",
                    "hi": "{name} ne approve kiya"},
    "tl_rejected": {"en": "{name} rejected the proposal", "es": "{name} rechazó la propuesta",
                    "de": "{name} hat den Vorschlag abgelehnt", "hi": "{name} ne prastav reject kiya"},
    "tl_erp_queued": {"en": "Queued {kind} for the ERP", "es": "En cola para el ERP: {kind}",
                      "de": "Für das ERP vorgemerkt: {kind}", "hi": "ERP ke liye queue mein: {kind}"},
    "tl_erp_posted": {"en": "Posted {kind} {reference} to the ERP", "es": "Registrado en el ERP: {kind} {reference}",
                      "de": "Im ERP gebucht: {kind} {reference}", "hi": "ERP mein post hua: {kind} {reference}"},
    "tl_erp_rejected": {"en": "The ERP refused the {kind}", "es": "El ERP rechazó el envío ({kind})",
                        "de": "Das ERP hat die Buchung ({kind}) abgelehnt", "hi": "ERP ne {kind} reject kiya"},
    "tl_erp_retried": {"en": "{name} sent the {kind} to the ERP again", "es": "{name} reenvió al ERP: {kind}",
                       "de": "{name} hat die Buchung ({kind}) erneut ans ERP gesendet",
                       "hi": "{name} ne {kind} ERP ko dobara bheja"},
    "tl_erp_abandoned": {"en": "{name} gave up the {kind} in the ERP", "es": "{name} abandonó el envío ({kind}) al ERP",
                         "de": "{name} hat die Buchung ({kind}) im ERP aufgegeben",
                         "hi": "{name} ne ERP mein {kind} chhod diya"},
    "tl_mes_retried": {"en": "{name} sent the {kind} to the MES again", "es": "{name} reenvió al MES: {kind}",
                       "de": "{name} hat {kind} erneut ans MES gesendet", "hi": "{name} ne {kind} MES ko dobara bheja"},
    "tl_mes_abandoned": {"en": "{name} gave up the {kind} in the MES", "es": "{name} abandonó el envío ({kind}) al MES",
                         "de": "{name} hat {kind} im MES aufgegeben", "hi": "{name} ne MES mein {kind} chhod diya"},
    "tl_refused_mes": {
        "en": "{name} tried to retry or abandon the MES transaction; refused: only someone with the {role} role can",
        "es": "{name} intentó reintentar o abandonar el envío al MES; rechazado: solo puede alguien con el rol {role}",
        "de": "{name} wollte die MES-Meldung erneut senden oder aufgeben; abgewiesen: nur die {role} darf das",
        "hi": "{name} ne MES transaction dobara bhejna ya chhodna chaha; mana: sirf {role} role wale kar sakte hain",
    },
    "tl_refused_erp": {
        "en": "{name} tried to retry or abandon the ERP transaction; refused: only someone with the {role} role can",
        "es": "{name} intentó reintentar o abandonar el envío al ERP; rechazado: solo puede alguien con el rol {role}",
        "de": "{name} wollte die ERP-Buchung erneut senden oder aufgeben; abgewiesen: nur die {role} darf das",
        "hi": "{name} ne ERP transaction dobara bhejna ya chhodna chaha; mana: sirf {role} role wale kar sakte hain",
    },
    "tl_erp_auth_failed": {"en": "The ERP refused the login; posting is paused",
                           "es": "El ERP rechazó el acceso; el envío está en pausa",
                           "de": "Das ERP hat die Anmeldung abgelehnt; Buchungen pausiert",
                           "hi": "ERP login fail; posting ruki hui hai"},
    "tl_mes_sent": {"en": "Told the MES: {kind} {reference}", "es": "Enviado al MES: {kind} {reference}",
                    "de": "Ans MES gemeldet: {kind} {reference}", "hi": "MES ko bheja: {kind} {reference}"},
    "tl_mes_rejected": {"en": "The MES refused the {kind}", "es": "El MES rechazó el envío ({kind})",
                        "de": "Das MES hat die Meldung ({kind}) abgelehnt", "hi": "MES ne {kind} reject kiya"},
    "tl_mes_auth_failed": {"en": "The MES refused the login; sending to it is paused",
                           "es": "El MES rechazó el acceso; el envío está en pausa",
                           "de": "Das MES hat die Anmeldung abgelehnt; Meldungen pausiert",
                           "hi": "MES login fail; bhejna ruka hua hai"},
    "tl_posted": {"en": "Everything is posted to the ERP", "es": "Todo quedó registrado en el ERP",
                  "de": "Alles ist im ERP gebucht", "hi": "Sab kuch ERP mein post ho gaya"},
    "tl_closed": {"en": "Closed", "es": "Cerrada", "de": "Geschlossen", "hi": "Band kiya gaya"},
    "tl_machine_running": {"en": "{machine} runs again", "es": "{machine} funciona de nuevo",
                           "de": "{machine} läuft wieder", "hi": "{machine} phir chalu hai"},
    "tl_machine_stopped": {"en": "{machine} stopped", "es": "{machine} se paró", "de": "{machine} steht",
                           "hi": "{machine} band ho gayi"},
    "tl_not_reached": {"en": "{name} was not reached on {channel}", "es": "No se pudo avisar a {name} por {channel}",
                       "de": "{name} über {channel} nicht erreicht", "hi": "{name} tak {channel} par sandesh nahi pahuncha"},
    "tl_template_sent": {
        "en": "{name} was reached on {channel} with a pre-approved template message",
        "es": "Se avisó a {name} por {channel} con una plantilla aprobada",
        "de": "{name} über {channel} mit einer freigegebenen Vorlage erreicht",
        "hi": "{name} ko {channel} par approved template se sandesh bheja",
    },
    "tl_work_order_status": {
        "en": "Work order {work_order} is now {status}",
        "es": "La orden {work_order} ahora está {status}",
        "de": "Auftrag {work_order} ist jetzt {status}",
        "hi": "Work order {work_order} ab {status} hai",
    },
    "tl_other": {"en": "{name} updated the exception", "es": "{name} actualizó la incidencia",
                 "de": "{name} hat die Störung aktualisiert", "hi": "{name} ne exception update kiya"},
    "tl_other_system": {"en": "The exception was updated", "es": "La incidencia se actualizó",
                        "de": "Die Störung wurde aktualisiert", "hi": "Exception update hua"},
    "someone": {"en": "someone", "es": "alguien", "de": "jemand", "hi": "koi"},
    "the_plant": {"en": "the plant", "es": "la planta", "de": "dem Werk", "hi": "plant"},
    # answers to questions (routing/queries.py)
    "q_line": {
        "en": "{code} {type} on {where}, {status} for {age}",
        "es": "{code} {type} en {where}, {status} desde hace {age}",
        "de": "{code} {type} an {where}, {status} seit {age}",
        "hi": "{code} {where} par {type}, {age} se {status}",
    },
    "q_line_work_orders": {"en": "work orders {work_orders}", "es": "órdenes {work_orders}",
                           "de": "Aufträge {work_orders}", "hi": "work orders {work_orders}"},
    "q_running": {"en": "running", "es": "en marcha", "de": "läuft", "hi": "chalu"},
    "q_stopped": {"en": "DOWN", "es": "PARADA", "de": "STEHT", "hi": "BAND"},
    "q_machine": {"en": "{machine}: {state}.", "es": "{machine}: {state}.", "de": "{machine}: {state}.",
                  "hi": "{machine}: {state}."},
    "q_unknown_machine": {"en": "I don't know machine {machine}.", "es": "No conozco la máquina {machine}.",
                          "de": "Maschine {machine} kenne ich nicht.", "hi": "Machine {machine} nahi mili."},
    "q_work_order": {
        "en": "{work_order}: {status}, {quantity} × {material} on {machine} (machine {state})",
        "es": "{work_order}: {status}, {quantity} × {material} en {machine} (máquina {state})",
        "de": "{work_order}: {status}, {quantity} × {material} an {machine} (Maschine {state})",
        "hi": "{work_order}: {status}, {quantity} × {material} {machine} par (machine {state})",
    },
    "q_work_order_bare": {
        "en": "{work_order}: {status} on {machine} (machine {state})",
        "es": "{work_order}: {status} en {machine} (máquina {state})",
        "de": "{work_order}: {status} an {machine} (Maschine {state})",
        "hi": "{work_order}: {status} {machine} par (machine {state})",
    },
    "q_due": {"en": "due {due}", "es": "vence {due}", "de": "fällig {due}", "hi": "{due} tak"},
    "q_for_customer": {"en": "for {customer_order}", "es": "para {customer_order}", "de": "für {customer_order}",
                       "hi": "{customer_order} ke liye"},
    "q_today": {"en": "today", "es": "hoy", "de": "heute", "hi": "aaj"},
    "q_this_week": {"en": "this week", "es": "esta semana", "de": "diese Woche", "hi": "is hafte"},
    "q_this_month": {"en": "this month", "es": "este mes", "de": "diesen Monat", "hi": "is mahine"},
    "q_kpis": {
        "en": "KPIs {period}: {opened} exceptions opened, {closed} closed, {open_now} open now. MTTR {mttr}, "
              "MTTA {mtta}, mean resolution {resolution}, {escalations} escalations, {messages} messages per exception.",
        "es": "KPIs {period}: {opened} incidencias abiertas, {closed} cerradas, {open_now} abiertas ahora. MTTR {mttr}, "
              "MTTA {mtta}, resolución media {resolution}, {escalations} escaladas, {messages} mensajes por incidencia.",
        "de": "KPIs {period}: {opened} Störungen eröffnet, {closed} geschlossen, {open_now} jetzt offen. MTTR {mttr}, "
              "MTTA {mtta}, mittlere Lösungszeit {resolution}, {escalations} Eskalationen, "
              "{messages} Nachrichten pro Störung.",
        "hi": "KPIs {period}: {opened} exceptions khule, {closed} band, {open_now} abhi khule. MTTR {mttr}, "
              "MTTA {mtta}, ausat samadhan {resolution}, {escalations} escalations, {messages} messages har exception.",
    },
    # --- sign-in to the console (mfgos/auth.py) ---
    "sign_in_link": {
        "en": "Your link to sign in to the mfgos console (works once, for {minutes} minutes): {url} "
              "If you did not ask for it, ignore this message.",
        "es": "Tu enlace para entrar en la consola de mfgos (sirve una vez, durante {minutes} minutos): {url} "
              "Si no lo pediste, ignora este mensaje.",
        "de": "Dein Link zur Anmeldung an der mfgos-Konsole (einmal gültig, {minutes} Minuten lang): {url} "
              "Falls du ihn nicht angefordert hast, ignoriere diese Nachricht.",
        "hi": "mfgos console mein sign in karne ka link (ek baar, {minutes} minute tak chalega): {url} "
              "Agar aapne yeh nahi maanga, to is message ko ignore karein.",
    },
}

# --- decision parts of an exception (routing/decisions.py, issue 16) ---
TEMPLATES.update({
    "part_reschedule": {
        "en": "{work_order} on {machine} from {start} to {end}",
        "es": "{work_order} en {machine} del {start} al {end}",
        "de": "{work_order} auf {machine} von {start} bis {end}",
        "hi": "{work_order} {machine} par {start} se {end} tak",
    },
    "part_material_expedite": {
        "en": "expedite {quantity} {unit} of {material} to {machine} by {need_by}",
        "es": "acelerar {quantity} {unit} de {material} para {machine} antes del {need_by}",
        "de": "{quantity} {unit} {material} bis {need_by} eilig an {machine} liefern",
        "hi": "{quantity} {unit} {material} {need_by} tak {machine} par jaldi pahunchana",
    },
    "part_material_transfer": {
        "en": "transfer {quantity} {unit} of {material} to {machine} by {need_by}",
        "es": "trasladar {quantity} {unit} de {material} a {machine} antes del {need_by}",
        "de": "{quantity} {unit} {material} bis {need_by} zu {machine} umlagern",
        "hi": "{quantity} {unit} {material} {need_by} tak {machine} par le jaana",
    },
    "part_customer_order_date": {
        "en": "{customer_order} promised for {promised} (was {previous})",
        "es": "{customer_order} prometido para el {promised} (antes {previous})",
        "de": "{customer_order} zugesagt für {promised} (bisher {previous})",
        "hi": "{customer_order} ki nayi date {promised} (pehle {previous})",
    },
    "part_status_needed": {"en": "waiting for your decision", "es": "espera tu decisión",
                           "de": "wartet auf deine Entscheidung", "hi": "aapke faisle ka intezaar"},
    "part_status_proposed": {"en": "waiting for approval", "es": "espera aprobación", "de": "wartet auf Freigabe",
                             "hi": "approval ka intezaar"},
    "part_status_approved": {"en": "approved", "es": "aprobado", "de": "freigegeben", "hi": "approved"},
    "part_status_rejected": {"en": "rejected", "es": "rechazado", "de": "abgelehnt", "hi": "reject hua"},
    "part_status_not_needed": {"en": "not needed", "es": "no necesario", "de": "nicht nötig", "hi": "zaroorat nahi"},
    "part_status_settled": {"en": "done and in the ERP", "es": "hecho y en el ERP", "de": "erledigt und im ERP",
                            "hi": "ho gaya aur ERP mein"},
    "part_state_refused": {
        "en": "{code}: {part} is {state}, nothing to change.",
        "es": "{code}: {part} está {state}, no hay nada que cambiar.",
        "de": "{code}: {part} ist {state}, nichts zu ändern.",
        "hi": "{code}: {part} {state} hai, badalne ko kuch nahi.",
    },
    "part_refused": {
        "en": "Only {role} can decide this on {code}.",
        "es": "Solo {role} puede decidir esto en {code}.",
        "de": "Nur {role} kann das bei {code} entscheiden.",
        "hi": "{code} par yeh sirf {role} tay kar sakte hain.",
    },
    "part_approval_request": {
        "en": "{code}: {name} proposes {part}. Approve?",
        "es": "{code}: {name} propone {part}. ¿Aprobar?",
        "de": "{code}: {name} schlägt vor: {part}. Freigeben?",
        "hi": "{code}: {name} ka prastav: {part}. Approve karein?",
    },
    "part_confirm_proposed": {
        "en": "Recorded on {code}: {part}. It waits for approval by {role}.",
        "es": "Registrado en {code}: {part}. Espera la aprobación de {role}.",
        "de": "Vermerkt bei {code}: {part}. Wartet auf Freigabe durch {role}.",
        "hi": "{code} par record hua: {part}. {role} ke approval ka intezaar.",
    },
    "part_confirm_approved": {
        "en": "Recorded on {code}: {part} approved. It goes to the ERP now.",
        "es": "Registrado en {code}: {part} aprobado. Va al ERP ahora.",
        "de": "Vermerkt bei {code}: {part} freigegeben. Geht jetzt ins ERP.",
        "hi": "{code} par record hua: {part} approved. Ab ERP mein jayega.",
    },
    "part_approved": {
        "en": "{code}: {name} approved {part}.",
        "es": "{code}: {name} aprobó {part}.",
        "de": "{code}: {name} hat freigegeben: {part}.",
        "hi": "{code}: {name} ne approve kiya: {part}.",
    },
    "part_confirm_rejected": {
        "en": "Recorded on {code}: you rejected {part}. The proposer has been told.",
        "es": "Registrado en {code}: rechazaste {part}. Se avisó a quien lo propuso.",
        "de": "Vermerkt bei {code}: du hast abgelehnt: {part}. Der Vorschlagende weiß Bescheid.",
        "hi": "{code} par record hua: aapne reject kiya: {part}. Prastav dene wale ko bata diya.",
    },
    "part_rejected": {
        "en": "{code}: {name} rejected {part}. {reason}",
        "es": "{code}: {name} rechazó {part}. {reason}",
        "de": "{code}: {name} hat abgelehnt: {part}. {reason}",
        "hi": "{code}: {name} ne reject kiya: {part}. {reason}",
    },
    "part_confirm_not_needed": {
        "en": "Recorded on {code}: {part} is not needed.",
        "es": "Registrado en {code}: {part} no es necesario.",
        "de": "Vermerkt bei {code}: {part} ist nicht nötig.",
        "hi": "{code} par record hua: {part} ki zaroorat nahi.",
    },
    "part_reminder": {
        "en": "Reminder {code}: {part} is still {state}.",
        "es": "Recordatorio {code}: {part} sigue: {state}.",
        "de": "Erinnerung {code}: {part}: noch {state}.",
        "hi": "Yaad dila rahe hain {code}: {part} abhi bhi {state}.",
    },
    "part_staging_notice": {
        "en": "{code}: {work_order} moves, so {quantity} {unit} of {material} are now needed at {machine} by {need_by}. Expedite or transfer?",
        "es": "{code}: {work_order} se mueve: ahora se necesitan {quantity} {unit} de {material} en {machine} antes del {need_by}. ¿Acelerar o trasladar?",
        "de": "{code}: {work_order} wird verschoben: {quantity} {unit} {material} werden jetzt bis {need_by} an {machine} gebraucht. Beschleunigen oder umlagern?",
        "hi": "{code}: {work_order} shift hua, ab {quantity} {unit} {material} {need_by} tak {machine} par chahiye. Jaldi mangayein ya transfer karein?",
    },
    "part_late_notice": {
        "en": "{code}: {work_order} moves, so customer order {customer_order} ({customer}) will be {late} late: new date {promised}. Confirm once the customer is told.",
        "es": "{code}: {work_order} se mueve: el pedido {customer_order} ({customer}) llegará {late} tarde, nueva fecha {promised}. Confirma cuando el cliente lo sepa.",
        "de": "{code}: {work_order} wird verschoben: Kundenauftrag {customer_order} ({customer}) wird {late} später fertig, neuer Termin {promised}. Bitte bestätigen, sobald der Kunde informiert ist.",
        "hi": "{code}: {work_order} shift hua, customer order {customer_order} ({customer}) {late} late hoga, nayi date {promised}. Customer ko batane ke baad confirm karein.",
    },
    "part_say_it": {
        "en": "{code}: {part} is not complete yet. Please write it, e.g. \"expedite 300 pcs by tomorrow 6am\".",
        "es": "{code}: {part} aún no está completo. Escríbelo, p. ej. \"acelerar 300 piezas para mañana a las 6\".",
        "de": "{code}: {part} ist noch nicht vollständig. Bitte schreiben, z. B. \"300 Stück bis morgen früh um 6 beschleunigen\".",
        "hi": "{code}: {part} abhi poora nahi hai. Likh kar bhejein, jaise \"300 pcs kal subah 6 baje tak jaldi\".",
    },
    "ask_part_when": {
        "en": "{code}: when? For example \"tomorrow 6am\", \"Fri\", \"+4h\" or \"after the repair\".",
        "es": "{code}: ¿cuándo? Por ejemplo \"mañana a las 6\", \"viernes\", \"+4h\" o \"después de la reparación\".",
        "de": "{code}: wann? Zum Beispiel \"morgen früh um 6\", \"Freitag\", \"+4h\" oder \"nach der Reparatur\".",
        "hi": "{code}: kab? Jaise \"kal subah 6 baje\", \"shukravar\", \"+4h\" ya \"repair ke baad\".",
    },
    "ask_part_work_order": {
        "en": "{code}: which work order? Please write its number, e.g. WO-1043.",
        "es": "{code}: ¿qué orden? Escribe su número, p. ej. WO-1043.",
        "de": "{code}: welcher Auftrag? Bitte die Nummer schreiben, z. B. WO-1043.",
        "hi": "{code}: kaunsa work order? Number likhein, jaise WO-1043.",
    },
    "ask_part_material": {
        "en": "{code}: which material?",
        "es": "{code}: ¿qué material?",
        "de": "{code}: welches Material?",
        "hi": "{code}: kaunsa material?",
    },
    "ask_part_quantity": {
        "en": "{code}: how many of {material}?",
        "es": "{code}: ¿cuántas unidades de {material}?",
        "de": "{code}: wie viel {material}?",
        "hi": "{code}: {material} kitna?",
    },
    "ask_part_customer_order": {
        "en": "{code}: which customer order? Please write its number, e.g. SO-7002.",
        "es": "{code}: ¿qué pedido? Escribe su número, p. ej. SO-7002.",
        "de": "{code}: welcher Kundenauftrag? Bitte die Nummer schreiben, z. B. SO-7002.",
        "hi": "{code}: kaunsa customer order? Number likhein, jaise SO-7002.",
    },
    "part_dropped": {
        "en": "I could not read the decision, so nothing was recorded. Write it again with the work order and the time.",
        "es": "No pude leer la decisión, así que no se registró nada. Escríbela de nuevo con la orden y la hora.",
        "de": "Ich konnte die Entscheidung nicht lesen; nichts wurde vermerkt. Bitte mit Auftrag und Zeit neu schreiben.",
        "hi": "Faisla samajh nahi aaya, isliye kuch record nahi hua. Work order aur time ke saath dobara likhein.",
    },
    "button_part_approve": {"en": "Approve", "es": "Aprobar", "de": "Freigeben", "hi": "Approve"},
    "button_part_reject": {"en": "Reject", "es": "Rechazar", "de": "Ablehnen", "hi": "Reject"},
    "button_part_confirm": {"en": "Confirm", "es": "Confirmar", "de": "Bestätigen", "hi": "Confirm"},
    "button_part_skip": {"en": "Not needed", "es": "No hace falta", "de": "Nicht nötig", "hi": "Zaroorat nahi"},
    "button_option": {"en": "Option {number}", "es": "Opción {number}", "de": "Option {number}",
                      "hi": "Vikalp {number}"},
    "options": {
        "en": "{code}: the planner's options: {options}. Choose one to propose it.",
        "es": "{code}: opciones de planificación: {options}. Elige una para proponerla.",
        "de": "{code}: Optionen für die Planung: {options}. Eine wählen, um sie vorzuschlagen.",
        "hi": "{code}: planner ke vikalp: {options}. Prastav ke liye ek chunein.",
    },
    "option_wait": {
        "en": "wait for the repair: {work_order} on {machine} from {start}, done {end}",
        "es": "esperar la reparación: {work_order} en {machine} desde {start}, termina {end}",
        "de": "auf die Reparatur warten: {work_order} auf {machine} ab {start}, fertig {end}",
        "hi": "repair ka intezaar: {work_order} {machine} par {start} se, poora {end}",
    },
    "option_wait_material": {
        "en": "wait for the material: {work_order} on {machine} from {start}, done {end}",
        "es": "esperar el material: {work_order} en {machine} desde {start}, termina {end}",
        "de": "auf das Material warten: {work_order} auf {machine} ab {start}, fertig {end}",
        "hi": "material ka intezaar: {work_order} {machine} par {start} se, poora {end}",
    },
    "option_split_material": {
        "en": "split: {quantity} of {work_order} on {machine} from {start}, the rest on its own machine, all done {end}",
        "es": "dividir: {quantity} de {work_order} en {machine} desde {start}, el resto en su máquina, todo termina {end}",
        "de": "teilen: {quantity} von {work_order} auf {machine} ab {start}, der Rest auf der eigenen Maschine, alles fertig {end}",
        "hi": "baanto: {work_order} ke {quantity} {machine} par {start} se, baaki apni machine par, sab poora {end}",
    },
    "part_split": {
        "en": "{work_order} split: {quantity} on {machine} from {start} to {end}, {split_quantity} as {new_order} on {split_machine} from {split_start} to {split_end}",
        "es": "{work_order} dividida: {quantity} en {machine} del {start} al {end}, {split_quantity} como {new_order} en {split_machine} del {split_start} al {split_end}",
        "de": "{work_order} geteilt: {quantity} auf {machine} von {start} bis {end}, {split_quantity} als {new_order} auf {split_machine} von {split_start} bis {split_end}",
        "hi": "{work_order} baanta: {quantity} {machine} par {start} se {end} tak, {split_quantity} {new_order} ke roop mein {split_machine} par {split_start} se {split_end} tak",
    },
    "option_move": {
        "en": "move to {machine}: {work_order} from {start}, done {end}",
        "es": "mover a {machine}: {work_order} desde {start}, termina {end}",
        "de": "auf {machine} verlegen: {work_order} ab {start}, fertig {end}",
        "hi": "{machine} par le jao: {work_order} {start} se, poora {end}",
    },
    "option_split": {
        "en": "split: {quantity} of {work_order} on {machine} from {start}, the rest after the repair, all done {end}",
        "es": "dividir: {quantity} de {work_order} en {machine} desde {start}, el resto tras la reparación, todo termina {end}",
        "de": "teilen: {quantity} von {work_order} auf {machine} ab {start}, der Rest nach der Reparatur, alles fertig {end}",
        "hi": "baanto: {work_order} ke {quantity} {machine} par {start} se, baaki repair ke baad, sab poora {end}",
    },
    "option_late": {"en": "(late: {late})", "es": "(tarde: {late})", "de": "(verspätet: {late})",
                    "hi": "(late: {late})"},
    "option_on_time": {"en": "(on time)", "es": "(a tiempo)", "de": "(pünktlich)", "hi": "(samay par)"},
    "option_staging": {
        "en": "material needed anew: {moved}", "es": "material necesario de nuevo: {moved}",
        "de": "Material neu bereitzustellen: {moved}", "hi": "material nayi jagah/samay par chahiye: {moved}",
    },
    "tl_repair_estimate": {
        "en": "{name} estimated when the repair is done.", "es": "{name} estimó cuándo termina la reparación.",
        "de": "{name} hat geschätzt, wann die Reparatur fertig ist.", "hi": "{name} ne repair poora hone ka andaaza diya.",
    },
    "tl_decision_needed": {
        "en": "A {kind} decision is needed.", "es": "Hace falta una decisión: {kind}.",
        "de": "Eine Entscheidung ist nötig: {kind}.", "hi": "{kind} ka faisla chahiye.",
    },
    "tl_decision_proposed": {
        "en": "{name} decided a {kind}.", "es": "{name} decidió: {kind}.", "de": "{name} hat entschieden: {kind}.",
        "hi": "{name} ne faisla kiya: {kind}.",
    },
    "tl_decision_approved": {
        "en": "{name} approved the {kind}.", "es": "{name} aprobó: {kind}.", "de": "{name} hat freigegeben: {kind}.",
        "hi": "{name} ne approve kiya: {kind}.",
    },
    "tl_decision_rejected": {
        "en": "{name} rejected the {kind}.", "es": "{name} rechazó: {kind}.", "de": "{name} hat abgelehnt: {kind}.",
        "hi": "{name} ne reject kiya: {kind}.",
    },
    "tl_decision_not_needed": {
        "en": "{name}: no {kind} needed.", "es": "{name}: no hace falta {kind}.", "de": "{name}: {kind} nicht nötig.",
        "hi": "{name}: {kind} ki zaroorat nahi.",
    },
    "tl_decision_refused": {
        "en": "{name} tried to decide the {kind}; refused: not their role.",
        "es": "{name} intentó decidir: {kind}; rechazado: no es su rol.",
        "de": "{name} wollte entscheiden: {kind}; abgewiesen: nicht ihre Rolle.",
        "hi": "{name} ne {kind} tay karna chaha; mana: yeh unka role nahi.",
    },
    "tl_decision_settled": {
        "en": "The {kind} is in the ERP.", "es": "{kind}: ya está en el ERP.", "de": "{kind}: im ERP gebucht.",
        "hi": "{kind} ERP mein ho gaya.",
    },
})

# --- digests: per shift and daily, for the roles the plant file names (routing/digests.py) ---
TEMPLATES.update({
    "digest_head_shift": {"en": "Shift digest {shift}, {span}", "es": "Resumen del turno {shift}, {span}",
                          "de": "Schichtbericht {shift}, {span}", "hi": "Shift {shift} ka saar, {span}"},
    "digest_head_daily": {"en": "Daily digest, {span}", "es": "Resumen del día, {span}",
                          "de": "Tagesbericht, {span}", "hi": "Din ka saar, {span}"},
    "digest_quiet": {
        "en": "Nothing opened, nothing open, no escalation, no decision waiting.",
        "es": "Nada abierto, nada pendiente, ninguna escalada, ninguna decisión pendiente.",
        "de": "Nichts eröffnet, nichts offen, keine Eskalation, keine offene Entscheidung.",
        "hi": "Kuch nahi khula, kuch baaki nahi, koi escalation nahi, koi decision baaki nahi.",
    },
    "digest_opened": {"en": "Opened: {count}", "es": "Abiertas: {count}", "de": "Eröffnet: {count}",
                      "hi": "Khule: {count}"},
    "digest_opened_line": {
        "en": "{code} {type} on {where} ({status}): {summary}", "es": "{code} {type} en {where} ({status}): {summary}",
        "de": "{code} {type} an {where} ({status}): {summary}", "hi": "{code} {where} par {type} ({status}): {summary}",
    },
    "digest_open": {"en": "Still open: {count}", "es": "Siguen abiertas: {count}", "de": "Noch offen: {count}",
                    "hi": "Abhi bhi khule: {count}"},
    "digest_open_line": {
        "en": "{code} {type} on {where}, open {age}, waits for {waits}",
        "es": "{code} {type} en {where}, abierta hace {age}, espera {waits}",
        "de": "{code} {type} an {where}, offen seit {age}, wartet auf {waits}",
        "hi": "{code} {where} par {type}, {age} se khula, intezaar: {waits}",
    },
    "digest_wait_ack": {"en": "an acknowledgement", "es": "una confirmación", "de": "eine Bestätigung",
                        "hi": "acknowledgement"},
    "digest_wait_fix": {"en": "a fix", "es": "una solución", "de": "eine Lösung", "hi": "fix"},
    "digest_wait_approval": {"en": "approval by the {role}", "es": "la aprobación de {role}",
                             "de": "die Freigabe der {role}", "hi": "{role} ka approval"},
    "digest_wait_erp": {"en": "the ERP", "es": "el ERP", "de": "das ERP", "hi": "ERP"},
    "digest_wait_running": {"en": "{machine} to run again", "es": "que {machine} vuelva a funcionar",
                            "de": "den Wiederanlauf von {machine}", "hi": "{machine} ke phir chalne ka"},
    "digest_escalations": {"en": "Escalations: {count}", "es": "Escaladas: {count}", "de": "Eskalationen: {count}",
                           "hi": "Escalations: {count}"},
    "digest_escalation_line": {
        "en": "{code}: {role} did not acknowledge, {to_role} paged at {time}",
        "es": "{code}: {role} no confirmó, se avisó a {to_role} a las {time}",
        "de": "{code}: {role} hat nicht bestätigt, {to_role} um {time} gerufen",
        "hi": "{code}: {role} ne acknowledge nahi kiya, {time} par {to_role} ko bulaya",
    },
    "digest_parts": {"en": "Decisions open: {count}", "es": "Decisiones pendientes: {count}",
                     "de": "Offene Entscheidungen: {count}", "hi": "Baaki decisions: {count}"},
    "digest_part_line": {
        "en": "{code} {kind}: {state} by the {role}, open {age}",
        "es": "{code} {kind}: {state} por {role}, pendiente hace {age}",
        "de": "{code} {kind}: {state} durch die {role}, offen seit {age}",
        "hi": "{code} {kind}: {role} dwara {state}, {age} se baaki",
    },
    "digest_part_needed": {"en": "to decide", "es": "por decidir", "de": "zu entscheiden", "hi": "tay karna hai"},
    "digest_part_proposed": {"en": "to approve", "es": "por aprobar", "de": "freizugeben", "hi": "approve karna hai"},
    "digest_part_rejected": {"en": "rejected, to decide again", "es": "rechazada, por decidir de nuevo",
                             "de": "abgelehnt, neu zu entscheiden", "hi": "reject hua, phir tay karna hai"},
    "digest_more": {"en": "... and {count} more", "es": "... y {count} más", "de": "... und {count} weitere",
                    "hi": "... aur {count}"},
    "digest_week": {
        "en": "Last 7 days: {opened} opened, {closed} closed; MTTA {mtta}, MTTR {mttr}, schedule adherence "
              "{adherence}, escalation rate {escalation_rate}, ERP rejections {erp_rejected}.",
        "es": "Últimos 7 días: {opened} abiertas, {closed} cerradas; MTTA {mtta}, MTTR {mttr}, cumplimiento del plan "
              "{adherence}, tasa de escalada {escalation_rate}, rechazos del ERP {erp_rejected}.",
        "de": "Letzte 7 Tage: {opened} eröffnet, {closed} geschlossen; MTTA {mtta}, MTTR {mttr}, Termintreue "
              "{adherence}, Eskalationsquote {escalation_rate}, ERP-Ablehnungen {erp_rejected}.",
        "hi": "Pichhle 7 din: {opened} khule, {closed} band; MTTA {mtta}, MTTR {mttr}, schedule adherence "
              "{adherence}, escalation rate {escalation_rate}, ERP rejections {erp_rejected}.",
    },
    # The four outcomes against the plant file's baseline (routing/outcomes.py), one line per type.
    "digest_outcomes": {"en": "Against the baseline (7 days):", "es": "Frente a la línea base (7 días):",
                        "de": "Im Vergleich zur Ausgangslage (7 Tage):", "hi": "Baseline se tulna (7 din):"},
    "digest_outcomes_all": {"en": "all types", "es": "todos los tipos", "de": "alle Arten", "hi": "sab types"},
    "digest_outcome": {"en": "{name} {current} (was {baseline}, {change})",
                       "es": "{name} {current} (antes {baseline}, {change})",
                       "de": "{name} {current} (vorher {baseline}, {change})",
                       "hi": "{name} {current} (pehle {baseline}, {change})"},
    "outcome_resolution_minutes": {"en": "resolution time", "es": "tiempo de resolución", "de": "Lösungszeit",
                                   "hi": "resolution time"},
    "outcome_schedule_adherence": {"en": "schedule adherence", "es": "cumplimiento del plan", "de": "Termintreue",
                                   "hi": "schedule adherence"},
    "outcome_erp_correction_rate": {"en": "ERP corrections", "es": "correcciones en el ERP",
                                    "de": "ERP-Korrekturen", "hi": "ERP corrections"},
    "outcome_coordination_per_week": {"en": "coordination per week", "es": "coordinación por semana",
                                      "de": "Abstimmungen pro Woche", "hi": "coordination har hafte"},
})

TYPE_NAMES: dict[str, dict[str, str]] = {
    "en": {
        "breakdown": "breakdown", "quality": "quality", "material": "material", "safety": "safety",
        "tooling": "tooling", "utility": "utility", "staffing": "staffing", "other": "other",
    },
    "es": {
        "breakdown": "avería", "quality": "calidad", "material": "material", "safety": "seguridad",
        "tooling": "herramienta", "utility": "servicios", "staffing": "personal", "other": "otro",
    },
    "de": {
        "breakdown": "Ausfall", "quality": "Qualität", "material": "Material", "safety": "Sicherheit",
        "tooling": "Werkzeug", "utility": "Versorgung", "staffing": "Personal", "other": "Sonstiges",
    },
    "hi": {
        "breakdown": "breakdown", "quality": "quality", "material": "material", "safety": "safety",
        "tooling": "tooling", "utility": "utility", "staffing": "staffing", "other": "other",
    },
}

# --- words and the console: ids people never see as ids ------------------------------------
# The words for the plant file's fixed vocabularies (roles, exception types, severities), the
# ERP transaction kinds, statuses and channels. German role names are departments (all
# feminine), so a template can say "die {role}" / "der {role}" whatever the role.

ROLE_NAMES: dict[str, dict[str, str]] = {
    "en": {"operator": "operator", "supervisor": "supervisor", "maintenance": "maintenance",
           "maintenance_lead": "maintenance lead", "planner": "planner", "materials": "materials",
           "quality": "quality", "customer_service": "customer service", "manager": "manager"},
    "es": {"operator": "operador", "supervisor": "supervisor", "maintenance": "mantenimiento",
           "maintenance_lead": "jefe de mantenimiento", "planner": "planificador", "materials": "materiales",
           "quality": "calidad", "customer_service": "atención al cliente", "manager": "gerente"},
    "de": {"operator": "Maschinenbedienung", "supervisor": "Schichtleitung", "maintenance": "Instandhaltung",
           "maintenance_lead": "Instandhaltungsleitung", "planner": "Planung", "materials": "Materialwirtschaft",
           "quality": "Qualitätssicherung", "customer_service": "Kundenbetreuung", "manager": "Werksleitung"},
    "hi": {"operator": "operator", "supervisor": "supervisor", "maintenance": "maintenance",
           "maintenance_lead": "maintenance lead", "planner": "planner", "materials": "materials",
           "quality": "quality", "customer_service": "customer service", "manager": "manager"},
}

KIND_NAMES: dict[str, dict[str, str]] = {
    "en": {"maintenance_request": "maintenance request", "production_order_status": "work order status change",
           "production_order_reschedule": "work order reschedule", "production_order_split": "work order split",
           "stock_status": "stock status change",
           "nonconformance": "nonconformance report", "material_request": "material request",
           "customer_order_date": "customer order date", "reschedule": "reschedule"},
    "es": {"maintenance_request": "solicitud de mantenimiento", "production_order_status": "cambio de estado de orden",
           "production_order_reschedule": "reprogramación de orden", "production_order_split": "división de orden",
           "stock_status": "cambio de estado de stock",
           "nonconformance": "informe de no conformidad", "material_request": "solicitud de material",
           "customer_order_date": "fecha de pedido de cliente", "reschedule": "reprogramación"},
    "de": {"maintenance_request": "Instandhaltungsmeldung", "production_order_status": "Auftragsstatus-Änderung",
           "production_order_reschedule": "Auftragsumplanung", "production_order_split": "Auftragsteilung",
           "stock_status": "Bestandsstatus-Änderung",
           "nonconformance": "Qualitätsmeldung", "material_request": "Materialanforderung",
           "customer_order_date": "Kundenliefertermin", "reschedule": "Umplanung"},
    "hi": {"maintenance_request": "maintenance request", "production_order_status": "work order status badlav",
           "production_order_reschedule": "work order reschedule", "production_order_split": "work order batwara",
           "stock_status": "stock status badlav",
           "nonconformance": "nonconformance report", "material_request": "material request",
           "customer_order_date": "customer order date", "reschedule": "reschedule"},
}

SEVERITY_NAMES: dict[str, dict[str, str]] = {
    "en": {"low": "low", "medium": "medium", "high": "high", "critical": "critical"},
    "es": {"low": "baja", "medium": "media", "high": "alta", "critical": "crítica"},
    "de": {"low": "niedrig", "medium": "mittel", "high": "hoch", "critical": "kritisch"},
    "hi": {"low": "kam", "medium": "madhyam", "high": "zyada", "critical": "gambhir"},
}

WORK_ORDER_STATUS_NAMES: dict[str, dict[str, str]] = {
    "en": {"planned": "planned", "released": "released", "running": "running", "held": "on hold", "done": "done"},
    "es": {"planned": "planificada", "released": "liberada", "running": "en curso", "held": "retenida",
           "done": "terminada"},
    "de": {"planned": "geplant", "released": "freigegeben", "running": "in Arbeit", "held": "angehalten",
           "done": "fertig"},
    "hi": {"planned": "planned", "released": "released", "running": "chal raha", "held": "hold par", "done": "poora"},
}

CHANNEL_NAMES: dict[str, dict[str, str]] = {
    "en": {"slack": "Slack", "telegram": "Telegram", "whatsapp": "WhatsApp", "console": "the console",
           "bridge": "the chat bridge"},
    "es": {"slack": "Slack", "telegram": "Telegram", "whatsapp": "WhatsApp", "console": "la consola",
           "bridge": "el puente de chat"},
    "de": {"slack": "Slack", "telegram": "Telegram", "whatsapp": "WhatsApp", "console": "die Konsole",
           "bridge": "die Chat-Brücke"},
    "hi": {"slack": "Slack", "telegram": "Telegram", "whatsapp": "WhatsApp", "console": "console",
           "bridge": "chat bridge"},
}

# The problem an exception type names, with its article, as the object of "reported ...".
PROBLEM_NAMES: dict[str, dict[str, str]] = {
    "en": {"breakdown": "a breakdown", "quality": "a quality problem", "material": "a material problem",
           "safety": "a safety issue", "tooling": "a tooling problem", "utility": "a utility outage",
           "staffing": "a staffing gap", "other": "a problem"},
    "es": {"breakdown": "una avería", "quality": "un problema de calidad", "material": "un problema de material",
           "safety": "un riesgo de seguridad", "tooling": "un problema de herramienta",
           "utility": "un fallo de servicios", "staffing": "falta de personal", "other": "un problema"},
    "de": {"breakdown": "einen Ausfall", "quality": "ein Qualitätsproblem", "material": "ein Materialproblem",
           "safety": "ein Sicherheitsproblem", "tooling": "ein Werkzeugproblem",
           "utility": "einen Versorgungsausfall", "staffing": "einen Personalengpass", "other": "ein Problem"},
    "hi": {"breakdown": "breakdown", "quality": "quality problem", "material": "material problem",
           "safety": "safety problem", "tooling": "tooling problem", "utility": "utility problem",
           "staffing": "staffing ki kami", "other": "problem"},
}


def words(identifier: str) -> str:
    """An id outside the vocabularies above, readable: `line_3_press` -> `line 3 press`."""
    return identifier.replace("_", " ")


def _name(table: dict[str, dict[str, str]], identifier: str, language: str) -> str:
    found = table.get(language, {}).get(identifier) or table["en"].get(identifier)
    return found if found is not None else words(identifier)


def type_name(exception_type: str, language: str) -> str:
    return _name(TYPE_NAMES, exception_type, language)


def role_name(role: str, language: str) -> str:
    return _name(ROLE_NAMES, role, language)


def kind_name(kind: str, language: str) -> str:
    """An ERP transaction kind in words: `maintenance_request` -> "maintenance request"."""
    return _name(KIND_NAMES, kind, language)


def severity_name(severity: str, language: str) -> str:
    return _name(SEVERITY_NAMES, severity, language)


def work_order_status_name(status: str, language: str) -> str:
    return _name(WORK_ORDER_STATUS_NAMES, status, language)


def channel_name(channel: str, language: str) -> str:
    return _name(CHANNEL_NAMES, channel, language)


def problem_name(exception_type: str, language: str) -> str:
    return _name(PROBLEM_NAMES, exception_type, language)


def status_name(status: str, language: str) -> str:
    """An exception's status in words ("posted" -> "posted to ERP"); an outbox status as words."""
    key = f"status_{status}"
    return render(key, language) if key in TEMPLATES else words(status)


def duration(seconds: float, language: str = "en") -> str:
    """A span as people say it on the floor: "45 s", "12 min", "3 h", "2 h 30 min", "2 d"."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total} s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {rest} min" if rest and hours < 10 else f"{hours} h"
    return {"de": f"{hours // 24} T", "es": f"{hours // 24} d", "hi": f"{hours // 24} din"}.get(
        language, f"{hours // 24} d")


def age(seconds: float, language: str = "en") -> str:
    """How long something has been going, coarse as a list shows it: "40 s", "12 min", "3 h", "2 d"."""
    total = max(0, int(seconds))
    if total >= 3600:
        total -= total % 3600  # whole hours (and days)
    return duration(total, language)


def past_fixes(fixes: Sequence[Mapping[str, Any]], language: str) -> str:
    """"Last 2 times: replaced the spindle bearing (E-0012, 3 d ago, 45 min), ..." from the fixes
    routing/similar.py found (code, fix, ago_s: how long before the new exception, minutes: how long
    the fix took from the report)."""
    listed = ", ".join(render(
        "past_fix", language, fix=str(f["fix"])[:200], code=f["code"], ago=age(float(f["ago_s"]), language),
        took=duration(int(f["minutes"]) * 60, language) if f.get("minutes") is not None else "-") for f in fixes)
    key = "alert_past_fix_once" if len(fixes) == 1 else "alert_past_fixes"
    return render(key, language, count=len(fixes), fixes=listed)


# The placeholders that name an id: `render` puts the word in, so no caller can leak the id.
WORDS_FOR: dict[str, Callable[[str, str], str]] = {
    "role": role_name, "to_role": role_name, "kind": kind_name, "type": type_name, "status": status_name,
    "severity": severity_name, "channel": channel_name,
}


def render(key: str, language: str, **values: Any) -> str:
    """The template `key` in `language` (English when missing), filled with `values`.

    Values of the placeholders in `WORDS_FOR` are ids (a role, an ERP kind, a status...) and
    go in as words; a value already in words passes through unchanged.
    """
    variants = TEMPLATES[key]
    template = variants.get(language) or variants["en"]
    for name, to_words in WORDS_FOR.items():
        if isinstance(values.get(name), str):
            values[name] = to_words(values[name], language)
    return template.format(**values).strip()
