/**
 * The MCP conformance suite's checks that fail against ChittyAuth by design, each with the reason. Everything
 * else must pass: this list is the suite's expected-failures baseline (a check that starts failing and is not
 * here fails `npm test`, and so does a listed one that starts passing: the suite calls it stale).
 *
 * Keys are `scenario` (every check of it) or `scenario:check-id`.
 */
const fixture = (tool: string) => `needs the suite's fixture tool \`${tool}\`; /mcp serves only tools generated from the contract`;
const noPrompts = 'ChittyAuth offers no prompts capability (the method answers -32601, as the spec requires of an undeclared capability)';
const noResources = 'ChittyAuth offers no resources capability (the method answers -32601, as the spec requires of an undeclared capability)';

export const NOT_APPLICABLE: Record<string, string> = {
  // Tools the suite expects a server to have.
  'tools-call-simple-text:tools-call-simple-text': fixture('test_simple_text'),
  'tools-call-image:tools-call-image': fixture('test_image_content'),
  'tools-call-audio:tools-call-audio': fixture('test_audio_content'),
  'tools-call-embedded-resource:tools-call-embedded-resource': fixture('test_embedded_resource'),
  'tools-call-mixed-content:tools-call-mixed-content': fixture('test_multiple_content_types'),
  'tools-call-error:tools-call-error': fixture('test_error_handling'),
  'tools-call-with-progress:tools-call-with-progress': fixture('test_tool_with_progress'),
  'tools-call-with-logging:tools-call-with-logging': 'needs the fixture tool `test_tool_with_logging` and the logging capability, which ChittyAuth does not offer (it logs to its own audit log)',
  'tools-call-sampling:tools-call-sampling': fixture('test_sampling'),
  'tools-call-elicitation:tools-call-elicitation': fixture('test_elicitation'),
  'elicitation-sep1034-defaults:elicitation-sep1034-general': fixture('test_elicitation_sep1034_defaults'),
  'elicitation-sep1330-enums:elicitation-sep1330-general': fixture('test_elicitation_sep1330_enums'),
  'json-schema-2020-12:json-schema-2020-12-tool-found': fixture('json_schema_2020_12_tool'),
  'server-stateless:sep-2575-server-rejects-undeclared-capability': fixture('test_missing_capability'),
  'server-stateless:sep-2575-missing-capability-http-400': fixture('test_missing_capability'),
  'server-stateless:sep-2575-http-server-no-independent-requests-on-stream': fixture('test_streaming_elicitation'),
  'server-stateless:sep-2575-server-no-log-without-loglevel': fixture('test_logging_tool'),
  'input-required-result-basic-elicitation:sep-2322-elicitation-incomplete': fixture('test_input_required_result_elicitation'),
  'input-required-result-basic-sampling:sep-2322-sampling-incomplete': fixture('test_input_required_result_sampling'),
  'input-required-result-basic-list-roots:sep-2322-list-roots-incomplete': fixture('test_input_required_result_list_roots'),
  'input-required-result-request-state:sep-2322-request-state-incomplete': fixture('test_input_required_result_request_state'),
  'input-required-result-multiple-input-requests:sep-2322-multiple-inputs-incomplete': fixture('test_input_required_result_multiple_inputs'),
  'input-required-result-multi-round:sep-2322-multi-round-r1': fixture('test_input_required_result_multi_round'),
  'input-required-result-result-type:sep-2322-result-type-included': fixture('test_input_required_result_elicitation'),
  'input-required-result-capability-check:sep-2322-respect-client-capabilities': fixture('test_input_required_result_capabilities'),
  'input-required-result-tampered-state:sep-2322-reject-tampered-state': fixture('test_input_required_result_request_state'),
  'input-required-result-non-tool-request:sep-2322-non-tool-incomplete': `needs an input_required prompt; ${noPrompts}`,
  // Capabilities ChittyAuth does not offer.
  'completion-complete:completion-complete': 'ChittyAuth offers no completions capability (no prompt or resource-template arguments to complete)',
  'logging-set-level:logging-set-level': 'ChittyAuth offers no logging capability: what it records goes to its audit log, readable through the audit tools',
  'prompts-list:prompts-list': noPrompts,
  'prompts-get-simple:prompts-get-simple': noPrompts,
  'prompts-get-with-args:prompts-get-with-args': noPrompts,
  'prompts-get-embedded-resource:prompts-get-embedded-resource': noPrompts,
  'prompts-get-with-image:prompts-get-with-image': noPrompts,
  'resources-list:resources-list': noResources,
  'resources-read-text:resources-read-text': noResources,
  'resources-read-binary:resources-read-binary': noResources,
  'resources-templates-read:resources-templates-read': noResources,
  'resources-subscribe:resources-subscribe': noResources,
  'resources-unsubscribe:resources-unsubscribe': noResources,
  'caching:sep-2549-prompts-list-caching-hints': noPrompts,
  'caching:sep-2549-resources-list-caching-hints': noResources,
  'caching:sep-2549-resources-templates-list-caching-hints': noResources,
  // Warnings.
  'server-sse-multiple-streams:server-sse-multiple-streams-session': '/mcp is stateless (no Mcp-Session-Id, no GET stream): every request is answered on its own response',
  'server-sse-polling:server-sse-polling-session': '/mcp is stateless (no Mcp-Session-Id, no GET stream to poll): every request is answered on its own response',
  'sep-2164-resource-not-found:sep-2164-error-code': `resources/read answers -32601, not -32602: ${noResources}`,
  'sep-2164-resource-not-found:sep-2164-data-uri': noResources,
  'input-required-result-missing-input-response:sep-2322-missing-response-rerequests': fixture('test_input_required_result_elicitation'),
  'input-required-result-ignore-extra-params:sep-2322-ignore-unexpected-params': fixture('test_input_required_result_elicitation'),
  // Pending (not scored) for 2026-07-28.
  'http-custom-header-server-validation': 'no ChittyAuth tool declares `x-mcp-header` parameters (SEP-2243, pending in the suite), so there is nothing to mirror into Mcp-Param-* headers',
  // Client scenarios (the gateway as the OAuth client of an upstream).
  'auth/basic-cimd:cimd-client-id-used':
    'the check wants the suite\'s own document URL (https://conformance-test.local/client-metadata.json) as client_id; the gateway does use a Client ID Metadata Document, its own at ISSUER/gw/client.json (tested in server/gateway/upstream-oauth.test.ts)',
  // The tasks extension (not scored): ChittyAuth's tools all answer at once.
  'tasks-lifecycle': 'tasks extension (not part of 2026-07-28): ChittyAuth does not offer tasks; every tool answers synchronously',
  'tasks-capability-negotiation': 'tasks extension (not part of 2026-07-28): ChittyAuth does not offer tasks',
  'tasks-wire-fields': 'tasks extension (not part of 2026-07-28): ChittyAuth does not offer tasks',
  'tasks-request-state-removal': 'tasks extension (not part of 2026-07-28): ChittyAuth does not offer tasks',
  'tasks-mrtr-input': 'tasks extension (not part of 2026-07-28): ChittyAuth does not offer tasks',
  'tasks-request-headers': 'tasks extension (not part of 2026-07-28): ChittyAuth does not offer tasks',
  'tasks-dispatch-and-envelope': 'tasks extension (not part of 2026-07-28): ChittyAuth does not offer tasks',
  'tasks-required-task-error': 'tasks extension (not part of 2026-07-28): ChittyAuth does not offer tasks',
  'tasks-mrtr-composition': 'tasks extension (not part of 2026-07-28): ChittyAuth does not offer tasks',
};
