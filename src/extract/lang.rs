//! Every piece of language knowledge the extractor uses, as data.
//!
//! One table per concept (order words, package words, tracking labels,
//! status phrases, forward prefixes …). The code in `mod.rs` only knows how
//! to match these tables against a lower-cased subject or body; adding a
//! language means adding rows here, nothing else.
//!
//! All entries are lower case (they are matched against `str::to_lowercase`
//! text). Entries are stems where a language inflects: a label match extends
//! over the rest of its word, so `zamówieni` covers `zamówienie/zamówienia`.

use crate::model::{EmailKind, ParcelStatus};

/// Words that present an order number (subject position `<word> N`, body
/// sentences and label/value layouts). The number must follow the word,
/// separated only by punctuation and [`FILLERS`].
pub const ORDER_WORDS: &[&str] = &[
    // en
    "order", "orders", "order number", "order id",
    // de
    "bestellung", "bestellungen", "bestell", "bestellnummer", "auftrag",
    // fr
    "commande", "n° de commande", "numéro de commande",
    // es / pt
    "pedido", "orden", "número de pedido", "encomenda", "número do pedido",
    // it
    "ordine", "numero d'ordine", "numero ordine",
    // nl
    "bestelling", "bestelnummer", "ordernummer",
    // pl
    "zamówieni", "numer zamówienia",
    // ru / uk
    "заказ", "номер заказа", "замовлення", "номер замовлення",
    // tr
    "sipariş", "sipariş numarası",
    // ko
    "주문", "주문번호", "주문 번호",
    // ja
    "注文", "ご注文", "注文番号",
    // he
    "הזמנה", "ההזמנה", "הזמנתך", "מספר הזמנה",
    // ar
    "طلب", "الطلب", "طلبك", "رقم الطلب",
    // cs
    "objednávk", "číslo objednávky",
    // sv / da / no / fi
    "beställning", "beställningsnummer", "ordrenummer", "bestilling", "tilaus",
    // ro / hu / el / vi / id / zh
    "comanda", "comandă", "rendelés", "παραγγελία", "đơn hàng", "pesanan", "订单",
];

/// Words that present a parcel (tracking) number: `Package T: …`.
pub const PACKAGE_WORDS: &[&str] = &[
    // en
    "package", "parcel", "shipment",
    // de
    "packstück", "paket", "sendung",
    // fr
    "colis",
    // es / pt
    "paquete", "pacote",
    // it
    "pacco", "spedizione",
    // nl
    "pakket", "zending",
    // pl
    "paczk", "przesyłk",
    // ru / uk
    "посылк", "отправлени", "посилк",
    // tr
    "kargo", "gönderi",
    // ko
    "운송장 번호", "운송장", "택배", "패키지", "소포",
    // ja
    "荷物", "小包", "パッケージ",
    // he
    "חבילה", "החבילה", "משלוח",
    // ar
    "الطرد", "طرد", "الشحنة",
    // cs
    "balík", "zásilk",
    // sv
    "försändelse",
    // zh
    "包裹",
];

/// Labels that present a tracking number in a body ("Tracking number: T",
/// "Ihre Sendungsverfolgungsnummer lautet T").
pub const TRACKING_LABELS: &[&str] = &[
    // en
    "tracking number", "tracking no", "tracking id", "tracking code", "tracking", "waybill",
    "new tracking number",
    // de
    "sendungsverfolgungsnummer", "sendungsnummer", "trackingnummer", "tracking-nummer",
    "paketnummer", "neue sendungsnummer",
    // fr
    "numéro de suivi", "n° de suivi", "nouveau numéro de suivi",
    // es
    "número de seguimiento", "nº de seguimiento", "n.º de seguimiento", "código de seguimiento",
    "nuevo número de seguimiento",
    // pt
    "código de rastreio", "código de rastreamento", "número de rastreio", "novo código de rastreio",
    // it
    "numero di tracciamento", "codice di tracciamento", "numero di tracking", "numero di spedizione",
    // nl
    "trackingcode", "track & trace", "track&trace", "zendingnummer", "nieuw trackingnummer",
    // pl
    "numer przesyłki", "numer śledzenia", "numer nadania", "numer paczki", "nowy numer przesyłki",
    // ru
    "трек-номер", "трек номер", "номер отслеживания", "трек-код", "новый трек-номер",
    // uk
    "номер відстеження", "трек-номер посилки",
    // tr
    "takip numarası", "takip no", "kargo takip numarası",
    // ko
    "운송장 번호", "운송장번호", "송장번호", "송장 번호", "추적 번호",
    // ja
    "追跡番号", "お問い合わせ番号", "伝票番号",
    // he
    "מספר מעקב", "מספר המעקב",
    // ar
    "رقم التتبع", "رقم تتبع", "رقم الشحنة",
    // cs
    "sledovací číslo", "číslo zásilky",
    // sv
    "spårningsnummer", "kollinummer", "sändningsnummer",
];

/// Labels that present a tracking number the email says was REPLACED.
pub const OLD_TRACKING_LABELS: &[&str] = &[
    "old tracking number", "previous tracking number", "original tracking number",
    "former tracking number", "replaced tracking number",
    "alte sendungsnummer", "alte trackingnummer", "bisherige sendungsnummer",
    "alte sendungsverfolgungsnummer",
    "ancien numéro de suivi", "numéro de suivi précédent",
    "número de seguimiento anterior", "antiguo número de seguimiento",
    "código de rastreio anterior", "código de rastreio antigo",
    "vecchio numero di tracciamento", "numero di tracciamento precedente",
    "oud trackingnummer", "oude trackingnummer", "vorig trackingnummer",
    "poprzedni numer przesyłki", "stary numer przesyłki",
    "старый трек-номер", "прежний трек-номер", "предыдущий трек-номер",
    "старий трек-номер", "попередній трек-номер",
    "eski takip numarası", "önceki takip numarası",
    "이전 운송장 번호", "기존 운송장 번호",
    "旧追跡番号", "以前の追跡番号",
    "מספר מעקב ישן", "מספר המעקב הקודם",
    "رقم التتبع القديم", "رقم التتبع السابق",
    "původní sledovací číslo", "staré sledovací číslo",
    "tidigare spårningsnummer", "gammalt spårningsnummer",
];

/// "changed from X to Y" in several languages: (from-word, to-word). The
/// first number is the replaced one. Only used in emails whose status says
/// the tracking number changed.
pub const CHANGE_FROM_TO: &[(&str, &str)] = &[
    ("from", "to"),
    ("von", "auf"),
    ("von", "zu"),
    ("de", "a"),
    ("de", "à"),
    ("de", "para"),
    ("da", "a"),
    ("van", "naar"),
    ("z", "na"),
    ("с", "на"),
    ("з", "на"),
    ("från", "till"),
    ("z", "na"),
];

/// Words that may stand between a label and its number ("Order No. N",
/// "Bestell-Nr. N", "Tracking number is T", "Nº de seguimiento GLS T").
pub const FILLERS: &[&str] = &[
    "no", "nr", "n", "nº", "n°", "num", "number", "id", "ref", "details", "detail", "is", "ist",
    "lautet", "est", "es", "é", "è", "jest", "är", "er", "nummer", "numéro", "número", "numero",
    "numer", "номер", "číslo", "番号", "번호", "№", "#", "código", "code", "your", "ihre", "votre",
    "tu", "seu", "il", "tuo", "je", "twój", "ваш", "gls", "dhl", "hermes", "dpd", "ups", "usps",
    "correos", "correios", "postnl", "inpost", "cainiao", "yunexpress", "4px", "yanwen", "j&t",
    "royal", "mail", "evri", "yodel", "colissimo", "la", "poste", "poczta", "polska", "pocztex",
    "ptt", "cj", "epost", "ems", "ceska", "posta", "postnord", "israel", "post", "aramex",
    "laposte", "des", "del", "de", "do", "da", "di", "van", "der", "aliexpress",
];

/// Prefixes mail clients put in front of a forwarded subject (followed by
/// `:`), and reply prefixes that may stack with them.
pub const FORWARD_PREFIXES: &[&str] = &[
    "fwd", "fw", "wg", "tr", "rv", "doorst", "i", "enc", "pd", "пересл", "переслано", "vs", "vb",
    "rif", "vl", "fs", "vid", "vb", "ynt", "ilt", "ileti", "전달", "転送", "הועבר", "إعادة توجيه",
    "přeposláno", "fwd.", "trs", "re", "aw", "sv", "antw", "odp", "ответ", "ha", "res", "r",
    "回复", "답장", "השב", "رد",
];

/// Lines that carry the original sender inside an inline forward
/// ("From: AliExpress <transaction@notice.aliexpress.com>").
pub const FORWARD_FROM_LABELS: &[&str] = &[
    "from:", "von:", "de :", "de:", "od:", "от:", "da:", "van:", "fra:", "från:", "kimden:",
    "gönderen:", "보낸 사람:", "보낸사람:", "差出人:", "发件人:", "від:", "מאת:", "من:", "lähettäjä:",
    "feladó:", "expéditeur :", "expéditeur:", "remitente:", "absender:",
];

/// Lines that carry the original subject inside an inline forward.
pub const FORWARD_SUBJECT_LABELS: &[&str] = &[
    "subject:", "betreff:", "objet :", "objet:", "asunto:", "assunto:", "oggetto:", "onderwerp:",
    "temat:", "тема:", "konu:", "제목:", "件名:", "主题:", "předmět:", "ämne:", "emne:", "נושא:",
    "الموضوع:", "aihe:", "tárgy:",
];

/// A status-phrase side effect beyond kind and parcel status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    None,
    /// The order is closed / receipt confirmed.
    Completed,
    /// A dispute was opened.
    Dispute,
    /// The tracking number was changed (old one goes to `replaced`).
    TrackingChanged,
}

/// One status phrase: what kind of email it makes and the parcel status it
/// states.
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub phrase: &'static str,
    pub kind: EmailKind,
    pub parcel: Option<ParcelStatus>,
    pub flag: Flag,
}

use EmailKind as K;
use ParcelStatus as P;

const fn s(phrase: &'static str, kind: EmailKind, parcel: Option<ParcelStatus>) -> Status {
    Status {
        phrase,
        kind,
        parcel,
        flag: Flag::None,
    }
}

const fn f(phrase: &'static str, kind: EmailKind, parcel: Option<ParcelStatus>, flag: Flag) -> Status {
    Status {
        phrase,
        kind,
        parcel,
        flag,
    }
}

const OC: EmailKind = K::OrderConfirmed;
const SH: EmailKind = K::Shipped;
const IT: EmailKind = K::InTransit;
const DL: EmailKind = K::Delivered;
const PR: EmailKind = K::Protection;
const OT: EmailKind = K::Other;
const INFO: Option<ParcelStatus> = Some(P::InfoReceived);
const TRANSIT: Option<ParcelStatus> = Some(P::InTransit);
const CUSTOMS: Option<ParcelStatus> = Some(P::Customs);
const HOLD: Option<ParcelStatus> = Some(P::CustomsHold);
const OFD: Option<ParcelStatus> = Some(P::OutForDelivery);
const PICKUP: Option<ParcelStatus> = Some(P::AvailableForPickup);
const FAILED: Option<ParcelStatus> = Some(P::DeliveryFailed);
const RETURNING: Option<ParcelStatus> = Some(P::Returning);
const DELIVERED: Option<ParcelStatus> = Some(P::Delivered);
const NONE: Option<ParcelStatus> = None;
const DONE: Flag = Flag::Completed;
const DISPUTE: Flag = Flag::Dispute;
const CHANGED: Flag = Flag::TrackingChanged;

/// Status phrases → kind and parcel status, per language. The subject is
/// matched first (longest phrase wins); the body's opening lines only when
/// the subject says nothing.
pub const STATUSES: &[Status] = &[
    // ---- en
    s("order confirmed", OC, NONE),
    s("order placed", OC, NONE),
    s("payment confirmed", OC, NONE),
    s("payment successful", OC, NONE),
    s("payment received", OC, NONE),
    s("has been confirmed", OC, NONE),
    s("orders have been confirmed", OC, NONE),
    s("ready to ship", OC, NONE),
    s("order shipped", SH, INFO),
    s("has been shipped", SH, INFO),
    s("has shipped", SH, INFO),
    s("shipped", SH, INFO),
    s("partially shipped", SH, INFO),
    s("is on the way", SH, INFO),
    s("on its way", SH, INFO),
    f("tracking number updated", SH, INFO, CHANGED),
    f("tracking number changed", SH, INFO, CHANGED),
    f("tracking number has been updated", SH, INFO, CHANGED),
    f("tracking number has changed", SH, INFO, CHANGED),
    f("tracking number has been changed", SH, INFO, CHANGED),
    f("new tracking number", SH, INFO, CHANGED),
    s("left the departure region", IT, TRANSIT),
    s("departed", IT, TRANSIT),
    s("collected by the carrier", IT, TRANSIT),
    s("picked up by the carrier", IT, TRANSIT),
    s("at customs", IT, CUSTOMS),
    s("in customs", IT, CUSTOMS),
    s("customs clearance", IT, CUSTOMS),
    s("held at customs", IT, HOLD),
    s("customs hold", IT, HOLD),
    s("cleared customs", IT, TRANSIT),
    s("has cleared customs", IT, TRANSIT),
    s("in your country", IT, TRANSIT),
    s("arrived in your country", IT, TRANSIT),
    s("with local carrier", IT, TRANSIT),
    s("handed over to local carrier", IT, TRANSIT),
    s("in local transit", IT, TRANSIT),
    s("at delivery center", IT, TRANSIT),
    s("package in transit", IT, TRANSIT),
    s("in transit", IT, TRANSIT),
    s("delivery update", IT, TRANSIT),
    s("out for delivery", IT, OFD),
    s("ready for pickup", IT, PICKUP),
    s("available for pickup", IT, PICKUP),
    s("awaiting pickup", IT, PICKUP),
    s("delivery attempt failed", IT, FAILED),
    s("delivery failed", IT, FAILED),
    s("failed delivery attempt", IT, FAILED),
    s("returned to sender", IT, RETURNING),
    s("being returned", IT, RETURNING),
    s("has been delivered", DL, DELIVERED),
    s("package delivered", DL, DELIVERED),
    s("delivered", DL, DELIVERED),
    f("how did it go", DL, DELIVERED, DONE),
    s("awaiting confirmation", PR, NONE),
    s("awaiting your confirmation", PR, NONE),
    s("will be marked as completed", PR, NONE),
    s("confirm receipt", PR, NONE),
    s("protection extended", PR, NONE),
    s("protection has been extended", PR, NONE),
    s("buyer protection ends", PR, NONE),
    s("protection ending", PR, NONE),
    s("protection is ending", PR, NONE),
    s("protection will end", PR, NONE),
    f("is closed", OT, NONE, DONE),
    f("has been closed", OT, NONE, DONE),
    f("order closed", OT, NONE, DONE),
    f("order completed", OT, NONE, DONE),
    f("dispute opened", OT, NONE, DISPUTE),
    f("dispute has been opened", OT, NONE, DISPUTE),
    f("opened a dispute", OT, NONE, DISPUTE),
    s("refund", OT, NONE),
    s("cancelled", OT, NONE),
    s("canceled", OT, NONE),
    s("delayed delivery coupon", OT, NONE),
    // ---- de
    s("bestellauftrag bestätigt", OC, NONE),
    s("bestellbestätigung", OC, NONE),
    s("wurden bestätigt", OC, NONE),
    s("wurde bestätigt", OC, NONE),
    s("zahlung bestätigt", OC, NONE),
    s("zahlung erhalten", OC, NONE),
    s("versandfertig", OC, NONE),
    s("bestellung versandt", SH, INFO),
    s("wurde versandt", SH, INFO),
    s("versandt", SH, INFO),
    s("teilweise versandt", SH, INFO),
    s("wird zugestellt", SH, INFO),
    s("neuer lieferstatus", SH, INFO),
    f("sendungsnummer geändert", SH, INFO, CHANGED),
    f("sendungsnummer wurde geändert", SH, INFO, CHANGED),
    f("sendungsverfolgungsnummer wurde aktualisiert", SH, INFO, CHANGED),
    f("trackingnummer aktualisiert", SH, INFO, CHANGED),
    f("neue sendungsnummer", SH, INFO, CHANGED),
    s("abflugregion verlassen", IT, TRANSIT),
    s("hat die abflugregion verlassen", IT, TRANSIT),
    s("vom kurier abgeholt", IT, TRANSIT),
    s("beim zoll", IT, CUSTOMS),
    s("im zoll", IT, CUSTOMS),
    s("zollabfertigung für", IT, TRANSIT),
    s("zoll freigegeben", IT, TRANSIT),
    s("mit lokalem kurier", IT, TRANSIT),
    s("in ihrem land", IT, TRANSIT),
    s("hat eine aktualisierung", IT, TRANSIT),
    s("paket im transit", IT, TRANSIT),
    s("im transit", IT, TRANSIT),
    s("in zustellung", IT, OFD),
    s("in der zustellung", IT, OFD),
    s("wird heute zugestellt", IT, OFD),
    s("zur abholung bereit", IT, PICKUP),
    s("abholbereit", IT, PICKUP),
    s("zustellversuch", IT, FAILED),
    s("wurde zugestellt", DL, DELIVERED),
    s("zugestellt", DL, DELIVERED),
    f("wie ist es gelaufen", DL, DELIVERED, DONE),
    f("wie war ihr einkaufserlebnis", DL, DELIVERED, DONE),
    s("auf bestätigung wird gewartet", PR, NONE),
    s("als abgeschlossen markiert", PR, NONE),
    s("empfang bestätigen", PR, NONE),
    s("käuferschutz verlängert", PR, NONE),
    s("käuferschutz endet", PR, NONE),
    f("ist abgeschlossen", OT, NONE, DONE),
    f("wurde geschlossen", OT, NONE, DONE),
    f("geschlossen", OT, NONE, DONE),
    f("streitfall eröffnet", OT, NONE, DISPUTE),
    f("streitigkeit eröffnet", OT, NONE, DISPUTE),
    s("rückerstattung", OT, NONE),
    s("storniert", OT, NONE),
    // ---- fr
    s("commande confirmée", OC, NONE),
    s("paiement confirmé", OC, NONE),
    s("paiement reçu", OC, NONE),
    s("commande expédiée", SH, INFO),
    s("a été expédiée", SH, INFO),
    s("expédiée", SH, INFO),
    s("partiellement expédiée", SH, INFO),
    f("numéro de suivi mis à jour", SH, INFO, CHANGED),
    f("numéro de suivi modifié", SH, INFO, CHANGED),
    s("a quitté la région de départ", IT, TRANSIT),
    s("pris en charge par le transporteur", IT, TRANSIT),
    s("en douane", IT, CUSTOMS),
    s("à la douane", IT, CUSTOMS),
    s("a passé la douane", IT, TRANSIT),
    s("dédouané", IT, TRANSIT),
    s("dans votre pays", IT, TRANSIT),
    s("transporteur local", IT, TRANSIT),
    s("en transit", IT, TRANSIT),
    s("en cours de livraison", IT, OFD),
    s("prêt à être retiré", IT, PICKUP),
    s("disponible en point relais", IT, PICKUP),
    s("a été livré", DL, DELIVERED),
    s("colis livré", DL, DELIVERED),
    s("livré", DL, DELIVERED),
    f("comment ça s'est passé", DL, DELIVERED, DONE),
    s("en attente de confirmation", PR, NONE),
    s("confirmer la réception", PR, NONE),
    s("protection prolongée", PR, NONE),
    f("clôturée", OT, NONE, DONE),
    f("est fermée", OT, NONE, DONE),
    f("litige ouvert", OT, NONE, DISPUTE),
    f("litige", OT, NONE, DISPUTE),
    s("remboursement", OT, NONE),
    s("annulée", OT, NONE),
    // ---- es
    s("pedido confirmado", OC, NONE),
    s("pago confirmado", OC, NONE),
    s("listo para enviar", OC, NONE),
    s("pedido enviado", SH, INFO),
    s("se ha enviado", SH, INFO),
    s("enviado", SH, INFO),
    s("parcialmente enviado", SH, INFO),
    f("número de seguimiento actualizado", SH, INFO, CHANGED),
    f("número de seguimiento ha cambiado", SH, INFO, CHANGED),
    s("salió de la región de origen", IT, TRANSIT),
    s("recogido por el transportista", IT, TRANSIT),
    s("en aduanas", IT, CUSTOMS),
    s("en aduana", IT, CUSTOMS),
    s("ha pasado la aduana", IT, TRANSIT),
    s("con transportista local", IT, TRANSIT),
    s("en tu país", IT, TRANSIT),
    s("centro de distribución", IT, TRANSIT),
    s("en tránsito", IT, TRANSIT),
    s("actualización del paquete", IT, TRANSIT),
    s("actualizaciones de entrega", IT, TRANSIT),
    s("en reparto", IT, OFD),
    s("listo para recoger", IT, PICKUP),
    s("entregado", DL, DELIVERED),
    s("pendiente de confirmación", PR, NONE),
    s("confirmar recepción", PR, NONE),
    s("protección ampliada", PR, NONE),
    s("protección extendida", PR, NONE),
    f("cómo ha ido", DL, DELIVERED, DONE),
    f("ha sido cerrado", OT, NONE, DONE),
    f("pedido cerrado", OT, NONE, DONE),
    f("disputa abierta", OT, NONE, DISPUTE),
    f("disputa", OT, NONE, DISPUTE),
    s("reembolso", OT, NONE),
    s("cancelado", OT, NONE),
    // ---- pt
    s("pagamento confirmado", OC, NONE),
    s("foi enviado", SH, INFO),
    s("enviado parcialmente", SH, INFO),
    f("código de rastreio atualizado", SH, INFO, CHANGED),
    s("saiu da região de origem", IT, TRANSIT),
    s("coletado pela transportadora", IT, TRANSIT),
    s("na alfândega", IT, CUSTOMS),
    s("fiscalização aduaneira", IT, CUSTOMS),
    s("liberado pela alfândega", IT, TRANSIT),
    s("no seu país", IT, TRANSIT),
    s("transportadora local", IT, TRANSIT),
    s("em trânsito", IT, TRANSIT),
    s("saiu para entrega", IT, OFD),
    s("disponível para retirada", IT, PICKUP),
    s("foi entregue", DL, DELIVERED),
    s("entregue", DL, DELIVERED),
    s("aguardando confirmação", PR, NONE),
    s("confirmar recebimento", PR, NONE),
    s("proteção estendida", PR, NONE),
    f("como foi", DL, DELIVERED, DONE),
    f("foi encerrado", OT, NONE, DONE),
    f("encerrado", OT, NONE, DONE),
    // ---- it
    s("ordine confermato", OC, NONE),
    s("pagamento confermato", OC, NONE),
    s("ordine spedito", SH, INFO),
    s("è stato spedito", SH, INFO),
    s("spedito", SH, INFO),
    s("parzialmente spedito", SH, INFO),
    f("numero di tracciamento aggiornato", SH, INFO, CHANGED),
    s("ha lasciato la regione di partenza", IT, TRANSIT),
    s("ritirato dal corriere", IT, TRANSIT),
    s("in dogana", IT, CUSTOMS),
    s("sdoganato", IT, TRANSIT),
    s("nel tuo paese", IT, TRANSIT),
    s("corriere locale", IT, TRANSIT),
    s("in transito", IT, TRANSIT),
    s("in consegna", IT, OFD),
    s("pronto per il ritiro", IT, PICKUP),
    s("consegnato", DL, DELIVERED),
    s("in attesa di conferma", PR, NONE),
    s("conferma la ricezione", PR, NONE),
    s("protezione estesa", PR, NONE),
    f("com'è andata", DL, DELIVERED, DONE),
    f("è stato chiuso", OT, NONE, DONE),
    f("ordine chiuso", OT, NONE, DONE),
    f("controversia", OT, NONE, DISPUTE),
    s("rimborso", OT, NONE),
    s("annullato", OT, NONE),
    // ---- nl
    s("bestelling bevestigd", OC, NONE),
    s("betaling bevestigd", OC, NONE),
    s("bestelling verzonden", SH, INFO),
    s("is verzonden", SH, INFO),
    s("verzonden", SH, INFO),
    s("gedeeltelijk verzonden", SH, INFO),
    f("trackingnummer gewijzigd", SH, INFO, CHANGED),
    f("trackingnummer bijgewerkt", SH, INFO, CHANGED),
    s("vertrekregio verlaten", IT, TRANSIT),
    s("opgehaald door de vervoerder", IT, TRANSIT),
    s("bij de douane", IT, CUSTOMS),
    s("in de douane", IT, CUSTOMS),
    s("door de douane", IT, TRANSIT),
    s("in jouw land", IT, TRANSIT),
    s("in je land", IT, TRANSIT),
    s("lokale vervoerder", IT, TRANSIT),
    s("onderweg", IT, TRANSIT),
    s("wordt vandaag bezorgd", IT, OFD),
    s("is bezorgd", DL, DELIVERED),
    s("bezorgd", DL, DELIVERED),
    s("afgeleverd", DL, DELIVERED),
    s("wacht op bevestiging", PR, NONE),
    s("in afwachting van bevestiging", PR, NONE),
    s("ontvangst bevestigen", PR, NONE),
    f("hoe is het gegaan", DL, DELIVERED, DONE),
    f("gesloten", OT, NONE, DONE),
    f("geschil", OT, NONE, DISPUTE),
    s("terugbetaling", OT, NONE),
    s("geannuleerd", OT, NONE),
    // ---- pl
    s("zamówienie potwierdzone", OC, NONE),
    s("płatność potwierdzona", OC, NONE),
    s("zamówienie wysłane", SH, INFO),
    s("zostało wysłane", SH, INFO),
    s("wysłane", SH, INFO),
    s("częściowo wysłane", SH, INFO),
    f("numer przesyłki został zmieniony", SH, INFO, CHANGED),
    f("numer przesyłki zmieniony", SH, INFO, CHANGED),
    s("opuściła region nadania", IT, TRANSIT),
    s("odebrana przez przewoźnika", IT, TRANSIT),
    s("w urzędzie celnym", IT, CUSTOMS),
    s("odprawa celna", IT, CUSTOMS),
    s("w twoim kraju", IT, TRANSIT),
    s("lokalnego przewoźnika", IT, TRANSIT),
    s("w drodze", IT, TRANSIT),
    s("w transporcie", IT, TRANSIT),
    s("wydana do doręczenia", IT, OFD),
    s("w doręczeniu", IT, OFD),
    s("gotowa do odbioru", IT, PICKUP),
    s("czeka na odbiór", IT, PICKUP),
    s("dostarczon", DL, DELIVERED),
    s("doręczon", DL, DELIVERED),
    s("oczekuje na potwierdzenie", PR, NONE),
    s("potwierdź odbiór", PR, NONE),
    f("jak poszło", DL, DELIVERED, DONE),
    f("zamknięte", OT, NONE, DONE),
    f("spór", OT, NONE, DISPUTE),
    s("zwrot pieniędzy", OT, NONE),
    s("anulowane", OT, NONE),
    // ---- ru
    s("заказ подтвержден", OC, NONE),
    s("заказ подтверждён", OC, NONE),
    s("оплата подтверждена", OC, NONE),
    s("заказ отправлен", SH, INFO),
    s("отправлен", SH, INFO),
    s("частично отправлен", SH, INFO),
    f("трек-номер изменен", SH, INFO, CHANGED),
    f("трек-номер изменён", SH, INFO, CHANGED),
    f("трек-номер обновлен", SH, INFO, CHANGED),
    s("покинула регион отправления", IT, TRANSIT),
    s("покинула страну отправления", IT, TRANSIT),
    s("передана перевозчику", IT, TRANSIT),
    s("на таможне", IT, CUSTOMS),
    s("прошла таможню", IT, TRANSIT),
    s("в вашей стране", IT, TRANSIT),
    s("местному перевозчику", IT, TRANSIT),
    s("у местного перевозчика", IT, TRANSIT),
    s("в пути", IT, TRANSIT),
    s("передана курьеру", IT, OFD),
    s("ожидает получения", IT, PICKUP),
    s("прибыла в пункт выдачи", IT, PICKUP),
    s("доставлен", DL, DELIVERED),
    s("вручен", DL, DELIVERED),
    s("ожидает подтверждения", PR, NONE),
    s("подтвердите получение", PR, NONE),
    s("защита продлена", PR, NONE),
    s("защита покупателя продлена", PR, NONE),
    f("как всё прошло", DL, DELIVERED, DONE),
    f("как все прошло", DL, DELIVERED, DONE),
    f("закрыт", OT, NONE, DONE),
    f("открыт спор", OT, NONE, DISPUTE),
    f("спор открыт", OT, NONE, DISPUTE),
    s("возврат средств", OT, NONE),
    s("отменен", OT, NONE),
    // ---- uk
    s("замовлення підтверджено", OC, NONE),
    s("замовлення відправлено", SH, INFO),
    s("відправлено", SH, INFO),
    f("трек-номер змінено", SH, INFO, CHANGED),
    s("на митниці", IT, CUSTOMS),
    s("у вашій країні", IT, TRANSIT),
    s("місцевого перевізника", IT, TRANSIT),
    s("в дорозі", IT, TRANSIT),
    s("передано кур'єру", IT, OFD),
    s("доставлено", DL, DELIVERED),
    s("очікує підтвердження", PR, NONE),
    s("захист продовжено", PR, NONE),
    f("закрито", OT, NONE, DONE),
    f("суперечк", OT, NONE, DISPUTE),
    // ---- tr
    s("sipariş onaylandı", OC, NONE),
    s("ödeme onaylandı", OC, NONE),
    s("kargoya verildi", SH, INFO),
    s("gönderildi", SH, INFO),
    s("kısmen gönderildi", SH, INFO),
    f("takip numarası güncellendi", SH, INFO, CHANGED),
    f("takip numarası değişti", SH, INFO, CHANGED),
    s("çıkış bölgesinden ayrıldı", IT, TRANSIT),
    s("gümrükte", IT, CUSTOMS),
    s("gümrükten geçti", IT, TRANSIT),
    s("ülkenizde", IT, TRANSIT),
    s("yerel kargo", IT, TRANSIT),
    s("yolda", IT, TRANSIT),
    s("dağıtımda", IT, OFD),
    s("teslim edildi", DL, DELIVERED),
    s("onay bekleniyor", PR, NONE),
    s("onayınızı bekliyor", PR, NONE),
    s("koruma süresi uzatıldı", PR, NONE),
    f("kapatıldı", OT, NONE, DONE),
    f("anlaşmazlık", OT, NONE, DISPUTE),
    // ---- ko
    s("주문 확인", OC, NONE),
    s("주문이 확인되었습니다", OC, NONE),
    s("결제 완료", OC, NONE),
    s("발송 완료", SH, INFO),
    s("발송되었습니다", SH, INFO),
    s("배송 시작", SH, INFO),
    f("운송장 번호 변경", SH, INFO, CHANGED),
    s("통관 중", IT, CUSTOMS),
    s("통관 완료", IT, TRANSIT),
    s("배송 중", IT, TRANSIT),
    s("현지 택배사", IT, TRANSIT),
    s("배송 출발", IT, OFD),
    s("배달 출발", IT, OFD),
    s("배송 완료", DL, DELIVERED),
    s("배달 완료", DL, DELIVERED),
    s("수령 확인 대기", PR, NONE),
    s("구매자 보호 기간 연장", PR, NONE),
    f("주문 종료", OT, NONE, DONE),
    f("분쟁", OT, NONE, DISPUTE),
    // ---- ja
    s("注文確定", OC, NONE),
    s("ご注文が確定", OC, NONE),
    s("注文が確認されました", OC, NONE),
    s("支払い完了", OC, NONE),
    s("発送済み", SH, INFO),
    s("発送されました", SH, INFO),
    f("追跡番号が変更", SH, INFO, CHANGED),
    s("通関中", IT, CUSTOMS),
    s("通関完了", IT, TRANSIT),
    s("輸送中", IT, TRANSIT),
    s("配送中", IT, TRANSIT),
    s("配達中", IT, OFD),
    s("配達済み", DL, DELIVERED),
    s("配達完了", DL, DELIVERED),
    s("受取確認待ち", PR, NONE),
    s("受け取り確認待ち", PR, NONE),
    s("保護期間が延長", PR, NONE),
    f("注文が完了", OT, NONE, DONE),
    f("紛争", OT, NONE, DISPUTE),
    // ---- he
    s("ההזמנה אושרה", OC, NONE),
    s("ההזמנה נשלחה", SH, INFO),
    s("נשלחה", SH, INFO),
    f("מספר המעקב עודכן", SH, INFO, CHANGED),
    s("במכס", IT, CUSTOMS),
    s("הגיעה לארצך", IT, TRANSIT),
    s("בארץ שלך", IT, TRANSIT),
    s("בדרך", IT, TRANSIT),
    s("יצאה למסירה", IT, OFD),
    s("נמסרה", DL, DELIVERED),
    s("ממתינה לאישור", PR, NONE),
    s("ממתין לאישור", PR, NONE),
    s("ההגנה הוארכה", PR, NONE),
    f("נסגרה", OT, NONE, DONE),
    f("מחלוקת", OT, NONE, DISPUTE),
    // ---- ar
    s("تم تأكيد الطلب", OC, NONE),
    s("تم شحن", SH, INFO),
    s("تم الشحن", SH, INFO),
    f("تم تحديث رقم التتبع", SH, INFO, CHANGED),
    s("في الجمارك", IT, CUSTOMS),
    s("وصل إلى بلدك", IT, TRANSIT),
    s("في بلدك", IT, TRANSIT),
    s("قيد النقل", IT, TRANSIT),
    s("في الطريق", IT, TRANSIT),
    s("خرج للتوصيل", IT, OFD),
    s("تم التسليم", DL, DELIVERED),
    s("تم توصيل", DL, DELIVERED),
    s("في انتظار التأكيد", PR, NONE),
    s("بانتظار التأكيد", PR, NONE),
    s("تم تمديد الحماية", PR, NONE),
    f("تم إغلاق", OT, NONE, DONE),
    f("نزاع", OT, NONE, DISPUTE),
    // ---- cs
    s("objednávka potvrzena", OC, NONE),
    s("objednávka odeslána", SH, INFO),
    s("odeslána", SH, INFO),
    s("částečně odeslána", SH, INFO),
    f("sledovací číslo změněno", SH, INFO, CHANGED),
    s("na celnici", IT, CUSTOMS),
    s("celním řízení", IT, CUSTOMS),
    s("ve vaší zemi", IT, TRANSIT),
    s("místního dopravce", IT, TRANSIT),
    s("na cestě", IT, TRANSIT),
    s("v přepravě", IT, TRANSIT),
    s("doručuje se", IT, OFD),
    s("doručen", DL, DELIVERED),
    s("čeká na potvrzení", PR, NONE),
    s("ochrana prodloužena", PR, NONE),
    f("uzavřen", OT, NONE, DONE),
    f("spor otevřen", OT, NONE, DISPUTE),
    // ---- sv
    s("beställning bekräftad", OC, NONE),
    s("order bekräftad", OC, NONE),
    s("har skickats", SH, INFO),
    s("skickad", SH, INFO),
    f("spårningsnummer har ändrats", SH, INFO, CHANGED),
    s("i tullen", IT, CUSTOMS),
    s("hos tullen", IT, CUSTOMS),
    s("i ditt land", IT, TRANSIT),
    s("lokalt transportföretag", IT, TRANSIT),
    s("under transport", IT, TRANSIT),
    s("ute för leverans", IT, OFD),
    s("har levererats", DL, DELIVERED),
    s("levererad", DL, DELIVERED),
    s("väntar på bekräftelse", PR, NONE),
    s("skyddet förlängt", PR, NONE),
    f("stängd", OT, NONE, DONE),
    f("tvist", OT, NONE, DISPUTE),
];

/// Words for "days" in protection extensions ("extended by 15 days").
pub const DAY_WORDS: &[&str] = &[
    "days", "day", "tage", "tagen", "tag", "jours", "jour", "días", "dias", "giorni", "dagen",
    "dni", "дней", "дня", "день", "днів", "дні", "gün", "일", "日", "ימים", "أيام", "يوما", "dní",
    "dny", "dagar",
];

/// Words for "extended" near a number of days.
pub const EXTENDED_WORDS: &[&str] = &[
    "extended", "extension", "verlängert", "verlängerung", "prolongée", "prolongation",
    "ampliada", "extendida", "ampliado", "estendida", "prorrogada", "prorogata", "estesa",
    "verlengd", "przedłużon", "продлена", "продлили", "продовжено", "uzatıldı", "연장", "延長",
    "הוארכה", "تمديد", "prodloužena", "förlängd",
];

/// Labels before the date Buyer Protection ends.
pub const PROTECTION_END_LABELS: &[&str] = &[
    "protection ends on", "protection ends", "protection until", "protection period ends",
    "protection expires on", "protection expires", "protected until",
    "käuferschutz endet am", "käuferschutz endet", "käuferschutz bis", "geschützt bis",
    "la protection prend fin le", "protection jusqu'au", "protégé jusqu'au",
    "la protección finaliza el", "protección hasta", "protegido hasta",
    "proteção até", "proteção termina em", "protezione fino al", "protezione termina il",
    "bescherming tot", "beschermd tot", "ochrona kupującego do", "ochrona do",
    "защита покупателя до", "защита до", "захист покупця до", "захист до",
    "koruma süresi", "koruma bitiş", "구매자 보호 종료", "보호 기간 종료", "保護期間終了",
    "保護期間", "ochrana kupujícího do", "ochrana do", "köparskydd till", "skydd till",
    "הגנה עד", "ההגנה מסתיימת", "الحماية حتى", "تنتهي الحماية",
];

/// Labels before an expected delivery date or window.
pub const ETA_LABELS: &[&str] = &[
    "estimated delivery", "expected delivery", "estimated arrival", "delivery estimate",
    "voraussichtliche zustellung", "voraussichtliche lieferung", "voraussichtlich",
    "livraison estimée", "livraison prévue", "entrega estimada", "entrega prevista",
    "previsão de entrega", "consegna prevista", "consegna stimata", "verwachte levering",
    "verwachte bezorging", "przewidywana dostawa", "szacowana dostawa", "ожидаемая доставка",
    "ориентировочная доставка", "очікувана доставка", "tahmini teslimat", "예상 배송",
    "배송 예정", "配達予定", "お届け予定", "předpokládané doručení", "beräknad leverans",
    "מועד מסירה משוער", "التسليم المتوقع",
];

/// Month names (lower case) → month number, for dates written out.
pub const MONTHS: &[(&str, u32)] = &[
    ("january", 1), ("jan", 1), ("januar", 1), ("janvier", 1), ("enero", 1), ("gennaio", 1),
    ("januari", 1), ("february", 2), ("feb", 2), ("februar", 2), ("février", 2), ("febrero", 2),
    ("febbraio", 2), ("februari", 2), ("march", 3), ("mar", 3), ("märz", 3), ("mär", 3),
    ("mars", 3), ("marzo", 3), ("maart", 3), ("april", 4), ("apr", 4), ("avril", 4),
    ("abril", 4), ("aprile", 4), ("may", 5), ("mai", 5), ("mayo", 5), ("maggio", 5), ("mei", 5),
    ("june", 6), ("jun", 6), ("juni", 6), ("juin", 6), ("junio", 6), ("giugno", 6), ("july", 7),
    ("jul", 7), ("juli", 7), ("juillet", 7), ("julio", 7), ("luglio", 7), ("august", 8),
    ("aug", 8), ("août", 8), ("agosto", 8), ("augustus", 8), ("september", 9), ("sep", 9),
    ("sept", 9), ("septembre", 9), ("septiembre", 9), ("settembre", 9), ("october", 10),
    ("oct", 10), ("oktober", 10), ("okt", 10), ("octobre", 10), ("octubre", 10),
    ("ottobre", 10), ("november", 11), ("nov", 11), ("novembre", 11), ("noviembre", 11),
    ("december", 12), ("dec", 12), ("dezember", 12), ("dez", 12), ("décembre", 12),
    ("diciembre", 12), ("dicembre", 12),
];

/// Sender domains that are AliExpress (besides `*.aliexpress.com`).
pub const ALIEXPRESS_DOMAINS: &[&str] = &["aliexpress.com", "aliexpress.ru", "aliexpress.us"];

/// Carriers that write to buyers about AliExpress orders. Their emails count
/// when they name AliExpress.
pub const CARRIER_DOMAINS: &[&str] = &[
    "cainiao.com", "cainiao.net", "global.cainiao.com", "poczta-polska.pl", "pocztex.pl",
    "gls-spain.es", "gls-group.eu", "gls-group.com", "gls-pakete.de", "correos.es", "correos.com",
    "dhl.de", "dhl.com", "dhl.nl", "dpd.de", "dpd.co.uk", "dpd.com", "hermesworld.com",
    "myhermes.de", "hermes-europe.de", "evri.com", "yodel.co.uk", "postnl.nl", "postnl.com",
    "royalmail.com", "usps.com", "laposte.fr", "laposte.net", "colissimo.fr", "yunexpress.com",
    "4px.com", "yanwen.com", "jtexpress.com", "correios.com.br", "pochta.ru", "cdek.ru",
    "posteitaliane.it", "bpost.be", "inpost.pl", "ctt.pt", "ptt.gov.tr", "epost.go.kr",
    "cjlogistics.com", "japanpost.jp", "ukrposhta.ua", "novaposhta.ua", "ceskaposta.cz",
    "zasilkovna.cz", "postnord.se", "postnord.dk", "israelpost.co.il", "emiratespost.ae",
    "aramex.com", "seur.com", "sunyou.hk", "17track.net",
];

/// Words that mark the name of the shop inside a carrier email.
pub const ALIEXPRESS_NAMES: &[&str] = &["aliexpress", "ali express", "алиэкспресс"];

/// Query parameters whose value is an order id (or a comma list of them).
pub const ORDER_PARAMS: &[&str] = &["orderid", "tradeorderid", "o_ids", "orderids", "order_id"];

/// Query parameters whose value is a tracking number.
pub const TRACKING_PARAMS: &[&str] = &[
    "trackingnumber", "mailno", "mailnolist", "trackingno", "logisticsno", "tracknumber",
    "tracking_number",
];
