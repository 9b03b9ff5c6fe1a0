//! Typed ids, so a customer id can never be passed where a conversation id is meant.

use crate::macros::id_type;

id_type!(
    CustomerId,
    ConversationId,
    MessageId,
    EventId,
    UserId,
    TeamId,
    BrandId,
    AttachmentId,
    SegmentId,
    CustomerNoteId,
    SurveyId
);
