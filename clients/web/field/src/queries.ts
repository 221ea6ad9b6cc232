// Every GraphQL document of the field app, typed by gql.tada against schema/schema.graphql.
import { graphql, type ResultOf } from '@shared/graphql'

export const MyInspectionsQuery = graphql(`
  query FieldMyInspections {
    myInspections(openOnly: false) {
      id kind kindLabel round status statusLabel due scheduledFor documentName
      project { id code name address }
      departments {
        conclusion conclusionLabel
        department { code name shortName }
        checks { code label unit measurable minimum maximum }
      }
      assignments { person { username displayName } department { code } }
    }
  }
`)

export type InspectionSummary = ResultOf<typeof MyInspectionsQuery>['myInspections'][number]

export const InspectionPhotosQuery = graphql(`
  query FieldInspectionPhotos($id: ID!) {
    inspection(id: $id) {
      id
      departments {
        department { code }
        checks { code photos { id status statusLabel thumbnailUrl takenAt latitude longitude } }
      }
    }
  }
`)

export type PhotoInfo = NonNullable<
  ResultOf<typeof InspectionPhotosQuery>['inspection']
>['departments'][number]['checks'][number]['photos'][number]

export const MyProjectsQuery = graphql(`
  query FieldMyProjects($agent: String!) {
    projects(first: 100, filter: { agent: $agent }) {
      edges {
        node {
          id code name address statusLabel
          enterprise { name }
          stages {
            code name order status statusLabel deadline overdue
            tasks {
              id statusLabel deadline overdue paused defaultApproved
              item { name }
              department { shortName }
            }
          }
        }
      }
    }
  }
`)

export type ProjectSummary = ResultOf<typeof MyProjectsQuery>['projects']['edges'][number]['node']

