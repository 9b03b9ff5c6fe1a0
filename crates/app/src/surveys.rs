//! Surveys: asked when a conversation is resolved (and NPS on a schedule to customers who
//! ordered), answered through signed links or in the portal, recorded on the conversation and
//! the customer's timeline.
//!
//! A survey's links carry its id and an HMAC-SHA256 of it under the server's survey key: a
//! link cannot be made up, nor turned into another survey's by changing the id.

use std::sync::Arc;

use seva_domain::survey::{Survey, SurveyChannel, SurveyKind, SurveySettings};
use seva_domain::values::bounded_text;
use seva_domain::{
    Actor, BrandId, Change, Conversation, Customer, IdentityKind, Role, SurveyId, ValueError,
};
use seva_store::surveys::{self as store, DEFAULT_BRAND, NewSurvey};
use seva_store::{Conn, Tx, events};

use crate::public::MailText;
use crate::secrets::new_secret;
use crate::{App, AppError, Caller, Result};

/// The longest comment a customer can leave.
pub const COMMENT_MAX: usize = 2_000;

/// What a survey email is written from.
#[derive(Debug, Clone)]
pub struct Invitation<'a> {
    pub survey: &'a Survey,
    /// The brand named in CES and NPS questions (the workspace's first brand, else "us").
    pub brand: &'a str,
    /// The customer's language, if known.
    pub language: Option<&'a str>,
    /// The links' signature.
    pub signature: &'a str,
    /// The conversation's subject, if it has one.
    pub subject: Option<&'a str>,
}

/// Writes survey emails: the web crate knows the words (in every language) and the public
/// address the links point to.
pub trait SurveyMail: Send + Sync + std::fmt::Debug {
    fn compose(&self, invitation: &Invitation<'_>) -> MailText;
}

impl App {
    /// Lets surveys go out by email, written by `mail`. Without it surveys are only asked in
    /// the portal.
    #[must_use]
    pub fn with_survey_mail(mut self, mail: Arc<dyn SurveyMail>) -> Self {
        self.survey_mail = Some(mail);
        self
    }

    /// The saved settings: the default (`None`) and each brand that has its own.
    pub async fn survey_settings(
        &self,
        caller: &Caller,
    ) -> Result<Vec<(Option<BrandId>, SurveySettings)>> {
        if caller.user.role != Role::Admin {
            return Err(AppError::Forbidden);
        }
        let mut conn = self.store.conn().await?;
        Ok(store::all_settings(&mut conn)
            .await?
            .into_iter()
            .map(|(brand, s)| ((brand != DEFAULT_BRAND).then_some(BrandId(brand)), s))
            .collect())
    }

    /// Saves a brand's survey settings (`None`: the default). Admins only.
    pub async fn save_survey_settings(
        &self,
        caller: &Caller,
        brand: Option<BrandId>,
        settings: SurveySettings,
    ) -> Result<SurveySettings> {
        if caller.user.role != Role::Admin {
            return Err(AppError::Forbidden);
        }
        let settings = settings.checked()?;
        if brand.is_some() && settings.relationship_nps_days.is_some() {
            return Err(AppError::Invalid(ValueError::UnknownValue {
                field: "relationship_nps_days (the default settings only)",
                value: "a brand's".into(),
            }));
        }
        let mut conn = self.store.conn().await?;
        if let Some(b) = brand
            && !seva_store::staff::brand_exists(&mut conn, b).await?
        {
            return Err(AppError::NotFound("brand"));
        }
        store::save_settings(
            &mut conn,
            brand.map_or(DEFAULT_BRAND, |b| b.0),
            &settings,
            self.now(),
        )
        .await?;
        Ok(settings)
    }

    /// Asks the customer of a conversation just resolved, unless its brand asks nothing or
    /// the customer was asked within the quiet period. One invitation per resolution.
    pub(crate) async fn ask_on_resolution(&self, tx: &mut Tx, c: &Conversation) -> Result<()> {
        let Some(settings) = settings_for(tx, c.brand_id).await? else {
            return Ok(());
        };
        if settings.on_resolution.is_empty() {
            return Ok(());
        }
        let now = self.now();
        // Two resolutions of one customer at once must not both ask.
        seva_store::customers::lock(tx, c.customer_id).await?;
        let customer = seva_store::customers::get(tx, c.customer_id).await?;
        if customer.merged_into.is_some() || customer.erased_at.is_some() {
            return Ok(());
        }
        let last = store::last_asked(tx, customer.id, false).await?;
        if !settings.may_ask(last, now) {
            return Ok(());
        }
        self.invite(tx, &customer, Some(c), &settings.on_resolution)
            .await?;
        Ok(())
    }

    /// Creates an invitation, records it, and emails it when the customer has an address and
    /// a mailbox can send it; otherwise it waits in the portal.
    async fn invite(
        &self,
        tx: &mut Tx,
        customer: &Customer,
        c: Option<&Conversation>,
        asks: &[SurveyKind],
    ) -> Result<SurveyId> {
        let now = self.now();
        let brand = c.and_then(|c| c.brand_id);
        let email = customer
            .identities
            .iter()
            .find(|i| i.kind == IdentityKind::Email)
            .map(|i| i.value.clone());
        let mailbox = seva_store::mail::mailbox_for_brand(tx, brand)
            .await?
            .is_some()
            || seva_store::mail::mailbox_for_brand(tx, None)
                .await?
                .is_some();
        let by_email = email.is_some() && mailbox && self.survey_mail.is_some();
        let channel = if by_email {
            SurveyChannel::Email
        } else {
            SurveyChannel::Portal
        };
        let id = store::insert(
            tx,
            &NewSurvey {
                customer: customer.id,
                conversation: c.map(|c| c.id),
                brand,
                channel,
                asks,
                at: now,
            },
        )
        .await?;
        events::record(
            tx,
            c.map(|c| c.id),
            Some(customer.id),
            Actor::SYSTEM,
            &Change::SurveySent {
                survey_id: id,
                asks: asks.to_vec(),
                channel,
            },
            now,
        )
        .await?;
        if let (Some(email), Some(mail)) = (email.filter(|_| by_email), &self.survey_mail) {
            let survey = store::get(tx, id).await?;
            let signature = self.survey_signature(tx, id).await?;
            let brand_name = brand_name(tx, brand).await?;
            let text = mail.compose(&Invitation {
                survey: &survey,
                brand: &brand_name,
                language: customer.language.as_deref(),
                signature: &signature,
                subject: c.and_then(|c| c.subject.as_deref()),
            });
            crate::public::queue_notice(tx, "survey", brand, c.map(|c| c.id), &email, &text, now)
                .await?;
        }
        Ok(id)
    }

    /// One round of relationship NPS: customers who ordered within the default settings'
    /// interval and were not asked NPS within it (nor anything within the quiet period).
    /// Returns how many were asked.
    pub async fn send_relationship_nps(&self, batch: i64) -> Result<u64> {
        let mut conn = self.store.conn().await?;
        let Some(settings) = store::settings(&mut conn, DEFAULT_BRAND).await? else {
            return Ok(0);
        };
        let Some(days) = settings.relationship_nps_days else {
            return Ok(0);
        };
        if self.survey_mail.is_none()
            || seva_store::mail::mailbox_for_brand(&mut conn, None)
                .await?
                .is_none()
        {
            return Ok(0);
        }
        let now = self.now();
        let interval = chrono::Duration::days(days);
        let due = store::relationship_nps_due(
            &mut conn,
            now - interval,
            now - interval,
            now - chrono::Duration::days(settings.quiet_days),
            batch,
        )
        .await?;
        drop(conn);
        let mut sent = 0;
        for customer in due {
            let mut tx = self.store.begin().await?;
            // Another instance may have asked meanwhile: checked again under the lock.
            seva_store::customers::lock(&mut tx, customer).await?;
            let last_nps = store::last_asked(&mut tx, customer, true).await?;
            let last = store::last_asked(&mut tx, customer, false).await?;
            if !settings.relationship_nps_due(last_nps, now) || !settings.may_ask(last, now) {
                continue;
            }
            let customer = seva_store::customers::get(&mut tx, customer).await?;
            self.invite(&mut tx, &customer, None, &[SurveyKind::Nps])
                .await?;
            tx.commit().await?;
            sent += 1;
        }
        Ok(sent)
    }

    /// The survey a link points to, if its signature is right and it still takes answers.
    pub async fn survey_by_link(&self, id: i64, signature: &str) -> Result<Survey> {
        let mut conn = self.store.conn().await?;
        self.check_link(&mut conn, SurveyId(id), signature).await?;
        let survey = store::get(&mut conn, SurveyId(id))
            .await
            .map_err(|_| AppError::SurveyLinkInvalid)?;
        // An erased customer's links take nothing more.
        let customer = seva_store::customers::get(&mut conn, survey.customer_id).await?;
        if customer.erased_at.is_some() {
            return Err(AppError::SurveyLinkInvalid);
        }
        if !survey.open_at(self.now()) {
            return Err(AppError::SurveyClosed);
        }
        Ok(survey)
    }

    /// Records a score given through a link (the click in the email, or the page after it).
    pub async fn answer_survey_by_link(
        &self,
        id: i64,
        signature: &str,
        kind: SurveyKind,
        score: i64,
    ) -> Result<Survey> {
        let survey = self.survey_by_link(id, signature).await?;
        self.answer(survey, kind, score).await
    }

    /// Records a comment given through a link.
    pub async fn comment_survey_by_link(
        &self,
        id: i64,
        signature: &str,
        text: &str,
    ) -> Result<Survey> {
        let survey = self.survey_by_link(id, signature).await?;
        let text = bounded_text("comment", text.trim(), COMMENT_MAX)?;
        if text.is_empty() {
            return Ok(survey);
        }
        let mut tx = self.store.begin().await?;
        store::comment(&mut tx, survey.id, &text).await?;
        events::record(
            &mut tx,
            survey.conversation_id,
            Some(survey.customer_id),
            Actor::customer(survey.customer_id),
            &Change::SurveyCommented {
                survey_id: survey.id,
            },
            self.now(),
        )
        .await?;
        let survey = store::get(&mut tx, survey.id).await?;
        tx.commit().await?;
        Ok(survey)
    }

    /// Records a score given in the portal by the survey's own customer.
    pub async fn answer_survey_in_portal(
        &self,
        customer: seva_domain::CustomerId,
        id: i64,
        kind: SurveyKind,
        score: i64,
    ) -> Result<Survey> {
        let mut conn = self.store.conn().await?;
        let survey = match store::get(&mut conn, SurveyId(id)).await {
            Ok(s) if s.customer_id == customer => s,
            Ok(_) | Err(seva_store::StoreError::NotFound) => {
                return Err(AppError::NotFound("survey"));
            }
            Err(e) => return Err(e.into()),
        };
        drop(conn);
        self.answer(survey, kind, score).await
    }

    async fn answer(&self, survey: Survey, kind: SurveyKind, score: i64) -> Result<Survey> {
        if !survey.open_at(self.now()) {
            return Err(AppError::SurveyClosed);
        }
        if !survey.asks.contains(&kind) {
            return Err(AppError::Invalid(ValueError::UnknownValue {
                field: "question of this survey",
                value: kind.to_string(),
            }));
        }
        let score = kind.check(score)?;
        if survey.score(kind) == Some(score) {
            // The same click twice (or a mail scanner and then the customer): one answer.
            return Ok(survey);
        }
        let mut tx = self.store.begin().await?;
        store::answer(&mut tx, survey.id, kind, score, self.now()).await?;
        events::record(
            &mut tx,
            survey.conversation_id,
            Some(survey.customer_id),
            Actor::customer(survey.customer_id),
            &Change::SurveyAnswered {
                survey_id: survey.id,
                kind,
                score,
            },
            self.now(),
        )
        .await?;
        let survey = store::get(&mut tx, survey.id).await?;
        tx.commit().await?;
        Ok(survey)
    }

    /// Every brand, for naming one in a survey.
    pub async fn brands(&self) -> Result<Vec<seva_domain::Brand>> {
        let mut conn = self.store.conn().await?;
        Ok(seva_store::staff::brands(&mut conn).await?)
    }

    /// The survey a chat's widget offers: the newest of its conversation's open surveys whose
    /// first question is unanswered, with the brand to name in it.
    pub async fn chat_survey(
        &self,
        session: &crate::chat::ChatSession,
    ) -> Result<Option<(Survey, String)>> {
        let Some(conversation) = session.conversation else {
            return Ok(None);
        };
        let mut conn = self.store.conn().await?;
        let now = self.now();
        let open = store::of_conversation(&mut conn, conversation)
            .await?
            .into_iter()
            .rev()
            .find(|s| s.open_at(now) && s.headline().is_some_and(|k| s.score(k).is_none()));
        let Some(survey) = open else {
            return Ok(None);
        };
        let brand = brand_name(&mut conn, survey.brand_id).await?;
        Ok(Some((survey, brand)))
    }

    /// A rating given with the widget's buttons: only for a survey of the chat's own
    /// conversation.
    pub async fn answer_survey_in_chat(
        &self,
        session: &crate::chat::ChatSession,
        id: i64,
        kind: SurveyKind,
        score: i64,
    ) -> Result<Survey> {
        let mut conn = self.store.conn().await?;
        let survey = match store::get(&mut conn, SurveyId(id)).await {
            Ok(s) if s.conversation_id.is_some() && s.conversation_id == session.conversation => s,
            Ok(_) | Err(seva_store::StoreError::NotFound) => {
                return Err(AppError::NotFound("survey"));
            }
            Err(e) => return Err(e.into()),
        };
        drop(conn);
        self.answer(survey, kind, score).await
    }

    /// A conversation's surveys, oldest first.
    pub async fn conversation_surveys(
        &self,
        id: seva_domain::ConversationId,
    ) -> Result<Vec<Survey>> {
        let mut conn = self.store.conn().await?;
        Ok(store::of_conversation(&mut conn, id).await?)
    }

    /// A customer's surveys, newest first.
    pub async fn customer_surveys(&self, id: seva_domain::CustomerId) -> Result<Vec<Survey>> {
        let mut conn = self.store.conn().await?;
        Ok(store::of_customer(&mut conn, id).await?)
    }

    /// The signature a survey's links carry.
    pub async fn survey_signature(&self, conn: &mut Conn, id: SurveyId) -> Result<String> {
        use hmac::Mac as _;
        let mac = self.survey_mac(conn, id).await?.finalize().into_bytes();
        Ok(hex::encode(&mac[..16]))
    }

    async fn check_link(&self, conn: &mut Conn, id: SurveyId, signature: &str) -> Result<()> {
        use hmac::Mac as _;
        let Ok(given) = hex::decode(signature) else {
            return Err(AppError::SurveyLinkInvalid);
        };
        // Compared in constant time by the hmac crate (the first 16 bytes are sent).
        self.survey_mac(conn, id)
            .await?
            .verify_truncated_left(&given)
            .ok()
            .filter(|()| given.len() == 16)
            .ok_or(AppError::SurveyLinkInvalid)
    }

    /// HMAC-SHA256 over `survey:{id}` with the server's survey key (made once, shared).
    async fn survey_mac(&self, conn: &mut Conn, id: SurveyId) -> Result<hmac::Hmac<sha2::Sha256>> {
        use hmac::Mac as _;
        let key =
            seva_store::public::server_key(conn, "survey", &new_secret(""), self.now()).await?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
            .map_err(|_| seva_store::StoreError::Corrupt("the survey key".into()))?;
        mac.update(format!("survey:{id}").as_bytes());
        Ok(mac)
    }
}

/// The brand's settings, else the default's; `None` when neither was saved.
async fn settings_for(conn: &mut Conn, brand: Option<BrandId>) -> Result<Option<SurveySettings>> {
    if let Some(b) = brand
        && let Some(s) = store::settings(conn, b.0).await?
    {
        return Ok(Some(s));
    }
    Ok(store::settings(conn, DEFAULT_BRAND).await?)
}

async fn brand_name(conn: &mut Conn, brand: Option<BrandId>) -> Result<String> {
    let brands = seva_store::staff::brands(conn).await?;
    Ok(brand
        .and_then(|b| brands.iter().find(|x| x.id == b))
        .or(brands.first())
        .map(|b| b.name.clone())
        .unwrap_or_default())
}
