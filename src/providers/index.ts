export { calcom, calcomPlatform, calcomPlatformProfile, calcomProfile } from './calcom.js';
export { dropboxSign, dropboxSignProfile, hellosign } from './dropbox-sign.js';
export { fromProfile } from './from-profile.js';
export { github, githubProfile } from './github.js';
export { google, googleProfile } from './google.js';
export { type MicrosoftOptions, microsoft } from './microsoft.js';
export { type OAuth2Options, oauth2 } from './oauth2.js';
export { type OidcOptions, oidc } from './oidc.js';
export { pipedrive, pipedriveProfile } from './pipedrive.js';
export type {
  ClientAuthPlacement,
  PresetOptions,
  ProviderProfile,
  RevokeProfile,
  TokenInfoProfile,
  TokenRequestProfile,
  TokenResponseProfile,
} from './profile.js';
export { slack, slackProfile } from './slack.js';
export {
  sunshineConversations,
  type SunshineConversationsOptions,
  sunshineConversationsProfile,
} from './sunshine-conversations.js';
export type { LoginChecks, ProviderClient, ProviderDefinition, ProviderOptions } from './types.js';
