// Entry point for `azd up` (azd reads infra/main.bicep when the folder exists). It creates the resource group
// and everything the AppHost's publish manifest expects around its containers: the Container Apps environment
// and registry azd deploys into, plus what the Aspire.Hosting.Azure.* packages would have generated and the
// registry these machines reach does not serve (storage, Azure OpenAI, managed-identity role assignments).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names the resource group and seeds resource names.')
param environmentName string

@minLength(1)
@description('Azure region for every resource.')
param location string

@description('Object id of the user or service principal running azd; granted blob and OpenAI data access for local debugging. Empty: none.')
param principalId string = ''

@description('Azure OpenAI model the teacher uses.')
param teacherModelName string = 'gpt-4o-mini'

@description('Version of the teacher model.')
param teacherModelVersion string = '2024-07-18'

@description('Deployment capacity in thousands of tokens per minute.')
@minValue(1)
param teacherCapacity int = 30

@description('Use an existing Azure OpenAI endpoint instead of creating an account (for example https://my-aoai.openai.azure.com/). Empty: create one.')
param existingTeacherEndpoint string = ''

@description('Container Apps workload profile type for the trainer, for example Consumption-GPU-NC8as-T4. Empty: the trainer runs on CPU in the Consumption profile.')
param trainerGpuProfileType string = ''

var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module resources 'resources.bicep' = {
  scope: rg
  name: 'resources'
  params: {
    location: location
    tags: tags
    principalId: principalId
    teacherModelName: teacherModelName
    teacherModelVersion: teacherModelVersion
    teacherCapacity: teacherCapacity
    existingTeacherEndpoint: existingTeacherEndpoint
    trainerGpuProfileType: trainerGpuProfileType
  }
}

// Output names follow azd's Aspire conventions: azd reads them to place the containers.
output MANAGED_IDENTITY_CLIENT_ID string = resources.outputs.MANAGED_IDENTITY_CLIENT_ID
output MANAGED_IDENTITY_NAME string = resources.outputs.MANAGED_IDENTITY_NAME
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = resources.outputs.AZURE_LOG_ANALYTICS_WORKSPACE_NAME
output AZURE_CONTAINER_REGISTRY_ENDPOINT string = resources.outputs.AZURE_CONTAINER_REGISTRY_ENDPOINT
output AZURE_CONTAINER_REGISTRY_MANAGED_IDENTITY_ID string = resources.outputs.AZURE_CONTAINER_REGISTRY_MANAGED_IDENTITY_ID
output AZURE_CONTAINER_APPS_ENVIRONMENT_NAME string = resources.outputs.AZURE_CONTAINER_APPS_ENVIRONMENT_NAME
output AZURE_CONTAINER_APPS_ENVIRONMENT_ID string = resources.outputs.AZURE_CONTAINER_APPS_ENVIRONMENT_ID
output AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN string = resources.outputs.AZURE_CONTAINER_APPS_ENVIRONMENT_DEFAULT_DOMAIN
output SERVICE_RABBIT_VOLUME_PGKD_RABBIT_DATA_NAME string = resources.outputs.SERVICE_RABBIT_VOLUME_PGKD_RABBIT_DATA_NAME
// Values for the AppHost's `blobs` and `teacher` connection-string parameters (no keys: managed identity).
output BLOBS_ENDPOINT string = resources.outputs.BLOBS_ENDPOINT
output TEACHER_CONNECTION_STRING string = resources.outputs.TEACHER_CONNECTION_STRING
