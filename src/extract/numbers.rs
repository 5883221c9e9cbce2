//! Tracking-number formats and their validation.
//!
//! Every format aliwatch recognises on its own (without a label or a subject
//! position telling it "this is a tracking number") lives here, with its
//! check digit where the format has one. Formats with a check digit (UPU S10,
//! GS1 SSCC inside DHL Paket numbers) must pass it; a number shaped like one
//! of them that fails is never taken, labelled or not (SPEC §3).
//!
//! Input to every function is one normalised token: ASCII letters and digits
//! only, upper case. Nothing here allocates or indexes out of bounds.

/// How sure a format is on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// Distinctive enough to take from free text in an AliExpress email.
    Free,
    /// Only taken after a tracking label (e.g. bare 10- or 12-digit waybills).
    Labelled,
}

/// A recognised format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub name: &'static str,
    pub strength: Strength,
}

/// What a token is, as far as tracking formats go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A known format, check digit (if any) passed.
    Known(Format),
    /// Shaped like a format with a check digit, but the check fails (or the
    /// S10 country is not an ISO 3166 code): never a tracking number.
    Invalid,
    /// No known format.
    Unknown,
}

/// ISO 3166-1 alpha-2 codes (plus `UK`, used by Royal Mail in S10 numbers).
const ISO_3166: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL \
BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM \
DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY \
HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC \
LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE \
NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD \
SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA \
UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW UK";

fn is_iso_country(code: &[u8]) -> bool {
    code.len() == 2
        && ISO_3166
            .as_bytes()
            .chunks(3)
            .any(|c| c.get(..2) == Some(code))
}

fn all_digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

fn all_upper(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_uppercase)
}

fn digit(b: u8) -> u32 {
    u32::from(b.wrapping_sub(b'0'))
}

/// UPU S10 check digit over the 8 serial digits (weights 8,6,4,2,3,5,9,7,
/// mod 11; 11−r, with r=1 → 0 and r=0 → 5).
pub fn s10_check_digit(serial: &[u8]) -> Option<u32> {
    const W: [u32; 8] = [8, 6, 4, 2, 3, 5, 9, 7];
    if serial.len() != 8 || !all_digits(serial) {
        return None;
    }
    let sum: u32 = serial.iter().zip(W).map(|(&d, w)| digit(d) * w).sum();
    Some(match sum % 11 {
        0 => 5,
        1 => 0,
        r => 11 - r,
    })
}

/// Shaped like S10: 2 letters, 9 digits, 2 letters.
pub fn is_s10_shape(t: &[u8]) -> bool {
    t.len() == 13
        && t.get(..2).is_some_and(all_upper)
        && t.get(2..11).is_some_and(all_digits)
        && t.get(11..).is_some_and(all_upper)
}

/// A valid UPU S10 number (check digit and ISO country).
pub fn is_valid_s10(t: &[u8]) -> bool {
    if !is_s10_shape(t) {
        return false;
    }
    let (Some(serial), Some(&check), Some(country)) = (t.get(2..10), t.get(10), t.get(11..13))
    else {
        return false;
    };
    s10_check_digit(serial) == Some(digit(check)) && is_iso_country(country)
}

/// GS1 mod-10 over a digit string whose last digit is the check digit
/// (weights 3,1,3,1… from the right, excluding the check digit).
pub fn gs1_valid(t: &[u8]) -> bool {
    if t.len() < 2 || !all_digits(t) {
        return false;
    }
    let Some((&check, body)) = t.split_last() else {
        return false;
    };
    let sum: u32 = body
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| digit(d) * if i % 2 == 0 { 3 } else { 1 })
        .sum();
    (10 - sum % 10) % 10 == digit(check)
}

/// `prefix` followed by between `min` and `max` digits.
fn prefixed_digits(t: &[u8], prefix: &[u8], min: usize, max: usize) -> bool {
    t.strip_prefix(prefix)
        .is_some_and(|rest| all_digits(rest) && (min..=max).contains(&rest.len()))
}

const fn free(name: &'static str) -> Format {
    Format {
        name,
        strength: Strength::Free,
    }
}

const fn labelled(name: &'static str) -> Format {
    Format {
        name,
        strength: Strength::Labelled,
    }
}

/// Classifies one normalised token (ASCII alphanumerics, upper case).
pub fn classify(token: &str) -> Verdict {
    let t = token.as_bytes();
    if t.len() < 8 || t.len() > 40 || !t.iter().all(u8::is_ascii_alphanumeric) {
        return Verdict::Unknown;
    }
    // Formats with a check digit first: a failing check rules the token out.
    if is_s10_shape(t) {
        return if is_valid_s10(t) {
            Verdict::Known(free("UPU S10"))
        } else {
            Verdict::Invalid
        };
    }
    if t.len() == 20 && t.starts_with(b"00") && all_digits(t) {
        // DHL Paket: "00" + 18-digit SSCC with a GS1 check digit.
        return match t.get(2..) {
            Some(sscc) if gs1_valid(sscc) => Verdict::Known(free("DHL Paket (SSCC)")),
            _ => Verdict::Invalid,
        };
    }
    let known = if prefixed_digits(t, b"LP", 12, 14) {
        free("Cainiao")
    } else if prefixed_digits(t, b"AP", 14, 14) {
        free("AliExpress logistics")
    } else if prefixed_digits(t, b"YT", 16, 16) {
        free("YunExpress")
    } else if prefixed_digits(t, b"JJD", 16, 16) || prefixed_digits(t, b"JD", 16, 16) {
        free("Yodel")
    } else if prefixed_digits(t, b"H", 19, 19) {
        free("Hermes")
    } else if prefixed_digits(t, b"PX", 10, 10) {
        free("Poczta Polska")
    } else if prefixed_digits(t, b"CN", 12, 15) {
        // Cainiao express; "CN" + digits is also a common invoice prefix, so
        // only after a label.
        labelled("Cainiao CN")
    } else if prefixed_digits(t, b"4PX", 10, 16) || prefixed_digits(t, b"FPXE", 10, 16) {
        free("4PX")
    } else if prefixed_digits(t, b"JT", 13, 16) {
        free("J&T Express")
    } else if prefixed_digits(t, b"SYUS", 10, 16) {
        free("Sunyou")
    } else if t.len() == 23
        && t.starts_with(b"PK")
        && t.iter().filter(|b| b.is_ascii_digit()).count() >= 12
    {
        free("Correos")
    } else if is_usps(t) {
        free("USPS")
    } else if t.len() == 12 && all_digits(t) {
        labelled("12-digit waybill (KR, GLS)")
    } else if (10..=11).contains(&t.len()) && all_digits(t) {
        labelled("GLS")
    } else {
        return Verdict::Unknown;
    };
    Verdict::Known(known)
}

/// USPS: `9` + 21 digits (IMpb), optionally behind a ZIP routing prefix
/// `420` + 5-digit ZIP (or ZIP+4).
fn is_usps(t: &[u8]) -> bool {
    if !all_digits(t) {
        return false;
    }
    let body = match t.len() {
        22 => Some(t),
        30 => t.get(8..).filter(|_| t.starts_with(b"420")),
        34 => t.get(12..).filter(|_| t.starts_with(b"420")),
        _ => None,
    };
    body.is_some_and(|b| b.first() == Some(&b'9') && b.len() == 22)
}

/// A token that might be a tracking number of an unknown format when it
/// stands in a tracking position (label or subject): letters and digits,
/// 8–35 chars, at least 6 digits (coupon codes like `AESD0325JC` have fewer).
pub fn plausible_unknown(token: &str) -> bool {
    let t = token.as_bytes();
    (8..=35).contains(&t.len())
        && t.iter().all(u8::is_ascii_alphanumeric)
        && t.iter().filter(|b| b.is_ascii_digit()).count() >= 6
}

/// Why a token shaped like a format with a check digit is not a number of
/// it (the reason [`classify`] said [`Verdict::Invalid`]).
pub fn invalid_reason(token: &str) -> Option<String> {
    let t = token.as_bytes();
    if is_s10_shape(t) {
        let (serial, check, country) = (t.get(2..10)?, t.get(10)?, t.get(11..13)?);
        let want = s10_check_digit(serial)?;
        if digit(*check) != want {
            return Some(format!(
                "its UPU S10 check digit is {}, but the first 8 digits give {want}",
                char::from(*check)
            ));
        }
        if !is_iso_country(country) {
            return Some(format!(
                "{} at its end is not a country code (UPU S10)",
                String::from_utf8_lossy(country)
            ));
        }
        return None;
    }
    if matches!(classify(token), Verdict::Invalid) {
        return Some("its GS1 check digit (DHL Paket SSCC) does not match".into());
    }
    None
}

/// Checks a tracking number typed by hand (`aliwatch add`): the normalised
/// token must be 6 to 40 letters and digits with at least one digit, pass
/// its check digit, not look like an AliExpress order number, and be of a
/// format aliwatch knows, unless `force` (an unknown carrier's format).
/// Returns the format's name (`None` for a forced unknown format), or why
/// it was refused, as a sentence for the user.
pub fn check_typed(token: &str, force: bool) -> Result<Option<&'static str>, String> {
    let t = token.as_bytes();
    if !(6..=40).contains(&t.len()) || !t.iter().all(u8::is_ascii_alphanumeric) {
        return Err(format!(
            "{token:?} is not a tracking number: those are 6 to 40 letters and digits"
        ));
    }
    if !t.iter().any(u8::is_ascii_digit) {
        return Err(format!(
            "{token:?} is not a tracking number: it has no digits"
        ));
    }
    match classify(token) {
        Verdict::Known(f) => Ok(Some(f.name)),
        Verdict::Invalid => Err(format!(
            "{token} is not a valid tracking number: {}; check for a typo",
            invalid_reason(token).unwrap_or_else(|| "its check digit does not match".into())
        )),
        Verdict::Unknown if force => Ok(None),
        Verdict::Unknown if (15..=20).contains(&t.len()) && all_digits(t) => Err(format!(
            "{token} looks like an AliExpress order number, not a tracking number; to tie a parcel to that order use `aliwatch add TRACKING_NUMBER --order {token}` (--force if it really is a tracking number)"
        )),
        Verdict::Unknown => Err(format!(
            "{token} is not a tracking number format aliwatch knows; check it, or add --force to track it anyway"
        )),
    }
}

/// Normalises a tracking or order number: drop spaces, upper case (the
/// crate's one normaliser).
pub use crate::model::normalise_number as normalise;

#[cfg(test)]
mod tests {
    use super::*;

    fn name(t: &str) -> Option<&'static str> {
        match classify(t) {
            Verdict::Known(f) => Some(f.name),
            _ => None,
        }
    }

    #[test]
    fn s10_check_digit_examples() {
        assert!(is_valid_s10(b"RB123456785GB"));
        assert!(!is_valid_s10(b"RB123456786US"));
        assert!(!is_valid_s10(b"RB123456785XX"));
        assert!(is_valid_s10(b"RS339620215NL"));
        assert!(is_valid_s10(b"LX153839488CN"));
        assert!(is_valid_s10(b"RB426774729SG"));
        assert!(is_valid_s10(b"UH214365457CN"));
        assert!(is_valid_s10(b"LS425831141NL"));
        // r = 1 → 0 and r = 0 → 5 branches.
        assert_eq!(s10_check_digit(b"00000001"), Some(4)); // 7 → 11-7
        assert_eq!(s10_check_digit(b"00000000"), Some(5));
        assert_eq!(classify("RB123456789GB"), Verdict::Invalid);
        assert_eq!(classify("RB123456785XX"), Verdict::Invalid);
    }

    #[test]
    fn s10_r_equals_one_gives_zero() {
        // 1*9 + 2*7 = 23, 23 % 11 = 1 → check digit 0.
        assert_eq!(s10_check_digit(b"00000012"), Some(0));
        // sum 0 → r = 0 → check digit 5.
        assert_eq!(s10_check_digit(b"00000000"), Some(5));
        assert_eq!(s10_check_digit(b"12345678"), Some(5));
        assert!(is_valid_s10(b"RR000000120DE"));
        assert!(is_valid_s10(b"RR000000005DE"));
        assert!(!is_valid_s10(b"RR000000125DE"));
        assert_eq!(s10_check_digit(b"1234567"), None);
    }

    #[test]
    fn s10_country_must_be_iso() {
        assert!(!is_valid_s10(b"RR000000120ZZ"));
        assert!(is_valid_s10(b"RR000000120UK"));
        assert!(is_valid_s10(b"RR000000120US"));
    }

    #[test]
    fn dhl_paket_gs1() {
        assert_eq!(name("00340434886289512140"), Some("DHL Paket (SSCC)"));
        assert_eq!(name("00340434028427427064"), Some("DHL Paket (SSCC)"));
        assert_eq!(classify("00340434886289512141"), Verdict::Invalid);
        assert!(gs1_valid(b"340434886289512140"));
        assert!(!gs1_valid(b"340434886289512149"));
    }

    #[test]
    fn prefixed_formats() {
        assert_eq!(name("LP00527423524449"), Some("Cainiao"));
        assert_eq!(name("LP005274235244"), Some("Cainiao"));
        assert_eq!(name("LP0052742352"), None);
        assert_eq!(name("LP00527"), None);
        assert_eq!(name("AP00527423524449"), Some("AliExpress logistics"));
        assert_eq!(name("AP0052742352444"), None);
        assert_eq!(name("YT5076620087085868"), Some("YunExpress"));
        assert_eq!(name("YT507662008708586"), None);
        assert_eq!(name("JJD0002249570136123"), Some("Yodel"));
        assert_eq!(name("JD0002249570136123"), Some("Yodel"));
        assert_eq!(name("H1020449177759447420"), Some("Hermes"));
        assert_eq!(name("H102044917775944742"), None);
        assert_eq!(name("PX1964275496"), Some("Poczta Polska"));
        assert_eq!(name("PX196427549"), None);
        assert_eq!(name("CN202503150012"), Some("Cainiao CN"));
        assert_eq!(name("4PX3001234567890"), Some("4PX"));
        assert_eq!(name("JT5012345678901"), Some("J&T Express"));
        assert_eq!(name("PKCLEH0497437010108552K"), Some("Correos"));
        assert_eq!(name("1316197997"), Some("GLS"));
        assert_eq!(name("123456789012"), Some("12-digit waybill (KR, GLS)"));
    }

    #[test]
    fn usps() {
        assert_eq!(name("9200190333885202055737"), Some("USPS"));
        assert_eq!(name("420537049200190333885202055737"), Some("USPS"));
        assert_eq!(name("420537041234200190333885202055737"), None);
        assert_eq!(name("8200190333885202055737"), None);
    }

    #[test]
    fn strengths() {
        assert!(
            matches!(classify("CN202503150012345"), Verdict::Known(f) if f.strength == Strength::Labelled)
        );
        assert!(
            matches!(classify("1316197997"), Verdict::Known(f) if f.strength == Strength::Labelled)
        );
        assert!(
            matches!(classify("LP00527423524449"), Verdict::Known(f) if f.strength == Strength::Free)
        );
        // Order-id-like 16 digits are not a tracking format.
        assert_eq!(classify("8211968327931234"), Verdict::Unknown);
        assert_eq!(classify("1005005834912540"), Verdict::Unknown);
    }

    #[test]
    fn unknown_plausible() {
        assert!(plausible_unknown("JY26CAA0D000551012"));
        assert!(!plausible_unknown("AESD0325JC"));
        assert!(!plausible_unknown("ABC"));
        assert_eq!(normalise(" lp 0052 7423 5244 49 "), "LP00527423524449");
    }

    #[test]
    fn typed_numbers_are_checked_with_their_reason() {
        let ok = |t: &str, force: bool| check_typed(t, force);
        let err = |t: &str, force: bool, has: &str| {
            let e = check_typed(t, force).expect_err(t);
            assert!(e.contains(has), "{t}: {e}");
        };
        assert_eq!(ok("RB123456785GB", false), Ok(Some("UPU S10")));
        assert_eq!(ok("LP00527423524449", false), Ok(Some("Cainiao")));
        err("HELLOWORLD", true, "no digits");
        err("HELLO-WORLD", true, "6 to 40 letters and digits");
        err("12345", true, "6 to 40");
        err(
            "RB123456789GB",
            true,
            "check digit is 9, but the first 8 digits give 5",
        );
        err("RB123456785XX", true, "XX at its end is not a country code");
        err("00340434886289512141", true, "GS1 check digit");
        err(
            "8123456789012345",
            false,
            "looks like an AliExpress order number",
        );
        assert_eq!(ok("8123456789012345", true), Ok(None));
        err("JY26CAA0D000551012", false, "--force");
        assert_eq!(ok("JY26CAA0D000551012", true), Ok(None));
    }

    #[test]
    fn hostile_tokens_do_not_panic() {
        for t in [
            "",
            "é",
            "LPé",
            "00",
            "RB1234567",
            "ÄÖÜÄÖÜÄÖÜÄÖÜ",
            "4200000000000000000000000000000",
        ] {
            let _ = classify(t);
            let _ = plausible_unknown(t);
        }
    }
}
