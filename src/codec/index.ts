/** Encrypted history: the AES-256-GCM payload codec, its keyring and the remote codec endpoint for the Temporal UI. */
export * from './aes-gcm.js';
export * from './keyring.js';
export * from './router.js';
