"""The part of Shopify's Admin GraphQL schema the sandbox serves, as SDL: the documented types retsync reads and
writes (NOTES.md beside the contract, and the shopify.dev reference pages it names), with their documented names
and enum values. The sandbox executes every query against it with graphql-core, so a field Shopify does not have
is refused as Shopify refuses it, never answered because a string matched.

Three versions are served: before 2025-07 a return is refunded with `returnRefund` (there is no `returnProcess`);
from 2025-07 on `returnProcess` confirms the items and refunds them in one mutation (the changelog "Returns
processing API"); `returnRefund` stays, deprecated; from 2026-01 a return line names its reason definition too.
"""

from __future__ import annotations

PROCESS_VERSION = "2025-07"
"""The first API version with `returnProcess`."""
DEFINITION_VERSION = "2026-01"
"""The first API version with `ReturnReasonDefinition` {id handle name} on return line items (the changelog "New
Return Reason Definitions API"); the `ReturnReason` enum is deprecated from then on, still answered."""

BASE_SDL = '''
scalar DateTime
scalar Decimal
scalar URL

interface Node { id: ID! }

type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! endCursor: String startCursor: String }

enum CurrencyCode { EUR USD GBP PLN CHF SEK DKK CZK CAD AUD }
enum ReturnStatus { CANCELED CLOSED DECLINED OPEN REQUESTED }
enum ReturnDeclineReason { FINAL_SALE OTHER RETURN_PERIOD_ENDED }
enum ReturnReason { COLOR DEFECTIVE NOT_AS_DESCRIBED OTHER SIZE_TOO_LARGE SIZE_TOO_SMALL STYLE UNKNOWN UNWANTED WRONG_ITEM }
enum OrderReturnStatus { IN_PROGRESS INSPECTION_COMPLETE NO_RETURN RETURN_FAILED RETURN_REQUESTED RETURNED }
enum OrderSortKeys { CREATED_AT CUSTOMER_NAME FINANCIAL_STATUS FULFILLMENT_STATUS ID NUMBER ORDER_NUMBER PROCESSED_AT RELEVANCE TOTAL_PRICE UPDATED_AT }
enum DraftOrderSortKeys { CUSTOMER_NAME ID NUMBER RELEVANCE STATUS TOTAL_PRICE UPDATED_AT }
enum DraftOrderStatus { COMPLETED INVOICE_SENT OPEN }
enum ReverseFulfillmentOrderStatus { CANCELED CLOSED COMPLETED OPEN }
enum ReturnErrorCode { ALREADY_EXISTS BLANK CREATION_FAILED EQUAL_TO FEATURE_NOT_ENABLED GREATER_THAN GREATER_THAN_OR_EQUAL_TO INCLUSION INTERNAL_ERROR INVALID INVALID_STATE LESS_THAN LESS_THAN_OR_EQUAL_TO NOTIFICATION_FAILED NOT_A_NUMBER NOT_EDITABLE NOT_FOUND PRESENT TAKEN TOO_BIG TOO_LONG TOO_MANY_ARGUMENTS TOO_SHORT WRONG_LENGTH }

type MoneyV2 { amount: Decimal! currencyCode: CurrencyCode! }
type MoneyBag { shopMoney: MoneyV2! presentmentMoney: MoneyV2! }
type MailingAddress { name: String zip: String phone: String countryCodeV2: String city: String }
type Customer implements Node { id: ID! displayName: String! email: String phone: String }
type ProductVariant implements Node { id: ID! sku: String barcode: String title: String! }

type LineItem implements Node {
  id: ID!
  name: String!
  title: String!
  sku: String
  quantity: Int!
  currentQuantity: Int!
  variant: ProductVariant
  originalUnitPriceSet: MoneyBag!
}
type LineItemEdge { cursor: String! node: LineItem! }
type LineItemConnection { edges: [LineItemEdge!]! nodes: [LineItem!]! pageInfo: PageInfo! }

type FulfillmentLineItem implements Node { id: ID! quantity: Int lineItem: LineItem! }

type Refund implements Node { id: ID! createdAt: DateTime note: String totalRefundedSet: MoneyBag! }
type RefundEdge { cursor: String! node: Refund! }
type RefundConnection { edges: [RefundEdge!]! nodes: [Refund!]! pageInfo: PageInfo! }

type Order implements Node {
  id: ID!
  name: String!
  createdAt: DateTime!
  updatedAt: DateTime!
  processedAt: DateTime!
  closedAt: DateTime
  cancelledAt: DateTime
  email: String
  phone: String
  note: String
  tags: [String!]!
  currencyCode: CurrencyCode!
  displayFinancialStatus: String
  returnStatus: OrderReturnStatus!
  totalPriceSet: MoneyBag!
  customer: Customer
  shippingAddress: MailingAddress
  lineItems(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): LineItemConnection!
  returns(first: Int, after: String, last: Int, before: String, reverse: Boolean = false, query: String): ReturnConnection!
  refunds(first: Int): [Refund!]!
}
type OrderEdge { cursor: String! node: Order! }
type OrderConnection { edges: [OrderEdge!]! nodes: [Order!]! pageInfo: PageInfo! }

type ReturnDecline { reason: ReturnDeclineReason! note: String }

interface ReturnLineItemType {
  id: ID!
  quantity: Int!
  processedQuantity: Int!
  refundableQuantity: Int!
  refundedQuantity: Int!
  unprocessedQuantity: Int!
  returnReason: ReturnReason!
  returnReasonNote: String!
  customerNote: String
  %(definition)s
}
type ReturnLineItem implements Node & ReturnLineItemType {
  id: ID!
  quantity: Int!
  processedQuantity: Int!
  refundableQuantity: Int!
  refundedQuantity: Int!
  unprocessedQuantity: Int!
  returnReason: ReturnReason!
  returnReasonNote: String!
  customerNote: String
  %(definition)s
  fulfillmentLineItem: FulfillmentLineItem!
  restockingFee: MoneyV2
}
type UnverifiedReturnLineItem implements Node & ReturnLineItemType {
  id: ID!
  quantity: Int!
  processedQuantity: Int!
  refundableQuantity: Int!
  refundedQuantity: Int!
  unprocessedQuantity: Int!
  returnReason: ReturnReason!
  returnReasonNote: String!
  customerNote: String
  %(definition)s
  unitPrice: MoneyV2!
}
type ReturnLineItemTypeEdge { cursor: String! node: ReturnLineItemType! }
type ReturnLineItemTypeConnection { edges: [ReturnLineItemTypeEdge!]! nodes: [ReturnLineItemType!]! pageInfo: PageInfo! }

type ReverseDeliveryTrackingV2 { number: String carrierName: String url: URL }
type ReverseDeliveryShippingDeliverable { tracking: ReverseDeliveryTrackingV2 }
union ReverseDeliveryDeliverable = ReverseDeliveryShippingDeliverable
type ReverseDelivery implements Node { id: ID! deliverable: ReverseDeliveryDeliverable }
type ReverseDeliveryEdge { cursor: String! node: ReverseDelivery! }
type ReverseDeliveryConnection { edges: [ReverseDeliveryEdge!]! nodes: [ReverseDelivery!]! pageInfo: PageInfo! }
type ReverseFulfillmentOrder implements Node {
  id: ID!
  status: ReverseFulfillmentOrderStatus!
  reverseDeliveries(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): ReverseDeliveryConnection!
}
type ReverseFulfillmentOrderEdge { cursor: String! node: ReverseFulfillmentOrder! }
type ReverseFulfillmentOrderConnection { edges: [ReverseFulfillmentOrderEdge!]! nodes: [ReverseFulfillmentOrder!]! pageInfo: PageInfo! }

type Return implements Node {
  id: ID!
  name: String!
  status: ReturnStatus!
  order: Order!
  totalQuantity: Int!
  createdAt: DateTime
  closedAt: DateTime
  requestApprovedAt: DateTime
  decline: ReturnDecline
  returnLineItems(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): ReturnLineItemTypeConnection!
  reverseFulfillmentOrders(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): ReverseFulfillmentOrderConnection!
  refunds(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): RefundConnection!
}
type ReturnEdge { cursor: String! node: Return! }
type ReturnConnection { edges: [ReturnEdge!]! nodes: [Return!]! pageInfo: PageInfo! }

type Attribute { key: String! value: String }
type DraftOrderLineItem implements Node { id: ID! title: String! sku: String quantity: Int! }
type DraftOrderLineItemEdge { cursor: String! node: DraftOrderLineItem! }
type DraftOrderLineItemConnection { edges: [DraftOrderLineItemEdge!]! nodes: [DraftOrderLineItem!]! pageInfo: PageInfo! }
type DraftOrder implements Node {
  id: ID!
  name: String!
  status: DraftOrderStatus!
  createdAt: DateTime!
  updatedAt: DateTime!
  note2: String
  tags: [String!]!
  email: String
  customAttributes: [Attribute!]!
  lineItems(first: Int, after: String, last: Int, before: String, reverse: Boolean = false): DraftOrderLineItemConnection!
}
type DraftOrderEdge { cursor: String! node: DraftOrder! }
type DraftOrderConnection { edges: [DraftOrderEdge!]! nodes: [DraftOrder!]! pageInfo: PageInfo! }

type QueryRoot {
  order(id: ID!): Order
  orders(first: Int, after: String, last: Int, before: String, reverse: Boolean = false, query: String, sortKey: OrderSortKeys = ID): OrderConnection!
  return(id: ID!): Return
  draftOrder(id: ID!): DraftOrder
  draftOrders(first: Int, after: String, last: Int, before: String, reverse: Boolean = false, query: String, sortKey: DraftOrderSortKeys = ID): DraftOrderConnection!
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
}

type UserError { field: [String!] message: String! }
type ReturnUserError { field: [String!] message: String! code: ReturnErrorCode }
enum DraftOrderErrorCode { INVALID TOO_LONG BLANK }
type DraftOrderUserError { field: [String!] message: String! code: DraftOrderErrorCode }

input ReturnApproveRequestInput { id: ID! notifyCustomer: Boolean = false }
input ReturnDeclineRequestInput { id: ID! declineReason: ReturnDeclineReason! declineNote: String notifyCustomer: Boolean = false }
input ReturnRequestLineItemInput { fulfillmentLineItemId: ID! quantity: Int! returnReason: ReturnReason customerNote: String }
input ReturnRequestInput { orderId: ID! returnLineItems: [ReturnRequestLineItemInput!]! }
input ReturnRefundLineItemInput { returnLineItemId: ID! quantity: Int! }
input ReturnRefundInput { returnId: ID! returnRefundLineItems: [ReturnRefundLineItemInput!]! refundShipping: Boolean notifyCustomer: Boolean = false }
input OrderInput { id: ID! note: String tags: [String!] }
input AttributeInput { key: String! value: String! }
input DraftOrderLineItemInput { title: String quantity: Int! sku: String originalUnitPrice: Decimal requiresShipping: Boolean taxable: Boolean }
input DraftOrderInput { note: String email: String tags: [String!] customAttributes: [AttributeInput!] lineItems: [DraftOrderLineItemInput!] }

type ReturnApproveRequestPayload { return: Return userErrors: [ReturnUserError!]! }
type ReturnDeclineRequestPayload { return: Return userErrors: [ReturnUserError!]! }
type ReturnRequestPayload { return: Return userErrors: [ReturnUserError!]! }
type ReturnClosePayload { return: Return userErrors: [ReturnUserError!]! }
type ReturnCancelPayload { return: Return userErrors: [ReturnUserError!]! }
type ReturnRefundPayload { refund: Refund userErrors: [ReturnUserError!]! }
type OrderUpdatePayload { order: Order userErrors: [UserError!]! }
type DraftOrderCreatePayload { draftOrder: DraftOrder userErrors: [DraftOrderUserError!]! }
'''

MUTATIONS_BEFORE_PROCESS = '''
type Mutation {
  returnRequest(input: ReturnRequestInput!): ReturnRequestPayload
  returnApproveRequest(input: ReturnApproveRequestInput!): ReturnApproveRequestPayload
  returnDeclineRequest(input: ReturnDeclineRequestInput!): ReturnDeclineRequestPayload
  returnRefund(returnRefundInput: ReturnRefundInput!): ReturnRefundPayload
  returnClose(id: ID!): ReturnClosePayload
  returnCancel(id: ID!, notifyCustomer: Boolean = false): ReturnCancelPayload
  orderUpdate(input: OrderInput!): OrderUpdatePayload
  draftOrderCreate(input: DraftOrderInput!): DraftOrderCreatePayload
}
schema { query: QueryRoot mutation: Mutation }
'''

PROCESS_SDL = '''
enum ReverseFulfillmentOrderDispositionType { MISSING NOT_RESTOCKED PROCESSING_REQUIRED RESTOCKED }
input ReturnProcessDispositionInput { quantity: Int! dispositionType: ReverseFulfillmentOrderDispositionType! locationId: ID }
input ReturnProcessReturnLineItemInput { id: ID! quantity: Int! dispositions: [ReturnProcessDispositionInput!] }
input ReturnProcessRefundInput { allowOverRefunding: Boolean = false }
input ReturnProcessFinancialTransferInput { issueRefund: ReturnProcessRefundInput }
input ReturnProcessInput {
  returnId: ID!
  returnLineItems: [ReturnProcessReturnLineItemInput!]
  financialTransfer: ReturnProcessFinancialTransferInput
  refundShipping: Boolean
  refundDuties: Boolean
  notifyCustomer: Boolean = false
  note: String
}
type ReturnProcessPayload { return: Return userErrors: [ReturnUserError!]! }
type Mutation {
  returnRequest(input: ReturnRequestInput!): ReturnRequestPayload
  returnApproveRequest(input: ReturnApproveRequestInput!): ReturnApproveRequestPayload
  returnDeclineRequest(input: ReturnDeclineRequestInput!): ReturnDeclineRequestPayload
  returnProcess(input: ReturnProcessInput!): ReturnProcessPayload
  returnRefund(returnRefundInput: ReturnRefundInput!): ReturnRefundPayload @deprecated(reason: "Use returnProcess instead.")
  returnClose(id: ID!): ReturnClosePayload
  returnCancel(id: ID!, notifyCustomer: Boolean = false): ReturnCancelPayload
  orderUpdate(input: OrderInput!): OrderUpdatePayload
  draftOrderCreate(input: DraftOrderInput!): DraftOrderCreatePayload
}
schema { query: QueryRoot mutation: Mutation }
'''


DEFINITION_SDL = """
type ReturnReasonDefinition implements Node { id: ID! handle: String! name: String! deleted: Boolean! }
"""


def sdl(version: str) -> str:
    """The schema of one API version ("2025-07"): `returnProcess` from PROCESS_VERSION on, reason definitions
    from DEFINITION_VERSION on."""
    definitions = version >= DEFINITION_VERSION
    base = BASE_SDL % {"definition": "returnReasonDefinition: ReturnReasonDefinition" if definitions else ""}
    return (base + (DEFINITION_SDL if definitions else "")
            + (PROCESS_SDL if version >= PROCESS_VERSION else MUTATIONS_BEFORE_PROCESS))
