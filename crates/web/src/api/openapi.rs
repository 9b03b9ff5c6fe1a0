//! The OpenAPI 3 document, generated from the handlers and types above.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(title = "Seva API", description = "The Seva customer-service platform. Every request needs \
        `Authorization: Bearer <token>` (create one with `seva admin create-token`). Errors are \
        `{\"error\": {\"code\": ..., \"message\": ...}}`; the codes are listed in the ErrorCode schema \
        and never change meaning."),
    paths(
        super::conversations::create_conversation,
        super::conversations::list_conversations,
        super::conversations::show_conversation,
        super::conversations::update_conversation,
        super::conversations::create_message,
        super::conversations::list_messages,
        super::conversations::list_events,
        super::conversations::search_conversations,
        super::customers::list_customers,
        super::customers::create_customer,
        super::customers::show_customer,
        super::customers::update_customer,
        super::crm::change_tags,
        super::crm::add_note,
        super::crm::list_notes,
        super::crm::list_duplicates,
        super::crm::merge_customer,
        super::crm::export_customer,
        super::crm::erase_customer,
        super::crm::list_customer_requests,
        super::crm::link_order,
        super::crm::list_linked_orders,
        super::crm::create_request,
        super::crm::show_request,
        super::crm::update_request,
        super::crm::save_product,
        super::crm::list_products,
        super::reports::show_kpis,
        super::reports::list_kpi_conversations,
        super::reports::list_kpi_customers,
        super::reports::show_service_impact,
        super::surveys::list_survey_settings,
        super::surveys::save_survey_settings,
        super::surveys::list_conversation_surveys,
        super::surveys::list_customer_surveys,
        super::segments::list_segments,
        super::segments::create_segment,
        super::segments::count_rules,
        super::segments::show_segment,
        super::segments::replace_segment,
        super::segments::delete_segment,
        super::segments::list_members,
        super::segments::export_members,
        super::directory::show_me,
        super::directory::update_me,
        super::directory::list_views,
        super::directory::create_view,
        super::directory::delete_view,
        super::directory::list_users,
        super::directory::list_teams,
        super::directory::list_brands,
        super::hours::list_hours,
        super::hours::create_hours,
        super::hours::show_hours,
        super::hours::replace_hours,
        super::hours::delete_hours,
        super::hours::update_brand,
        super::hours::update_team,
        super::sla::list_policies,
        super::sla::create_policy,
        super::sla::show_policy,
        super::sla::replace_policy,
        super::sla::delete_policy,
        super::sla::conversation_sla,
        super::mailboxes::list_mailboxes,
        super::mailboxes::create_mailbox,
        super::mailboxes::show_mailbox,
        super::mailboxes::update_mailbox,
        super::mailboxes::check_mailbox,
        super::mailboxes::list_rejected_mail,
        super::orders::record_order,
        super::orders::show_order,
        super::orders::list_customer_orders,
        super::orders::create_integration,
        super::orders::list_integrations,
        super::widgets::list_widgets,
        super::widgets::create_widget,
        super::widgets::show_widget,
        super::widgets::update_widget,
    ),
    components(schemas(crate::error::ErrorCode)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}
