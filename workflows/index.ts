/** The workflows the toolgate worker runs; this file is the workflow bundle's entry point. */
export { toolRequest } from './tool-request.js';
export { killSwitchRegistry } from './kill-switch.js';
