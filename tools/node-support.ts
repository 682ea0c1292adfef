/**
 * The AWS SDK prints a NodeVersionSupportWarning in every process on Node < 22 (its releases from
 * January 2027 on will need Node 22). We deploy on nodejs22.x and run locally on the Node the
 * machine has; the pinned SDK supports it. So the local entry points (CLI, npm start, tests) turn
 * off exactly that warning with the SDK's own switch; every other warning still shows. Why, and
 * when to remove this: docs/decisions.md ("Node 20 here, Node 22 on Lambda").
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
